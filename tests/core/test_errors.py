"""Every error is an RFC 9457 problem document; bad input never reaches a 500."""

from __future__ import annotations

import logging

import httpx
import pytest

from app.main import create_app

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


class TestProblemDocuments:
    async def test_unknown_route_is_404(self, client):
        assert_problem(await client.get("/v1/nothing-here"), 404)

    async def test_wrong_method_is_405(self, client):
        assert_problem(await client.delete("/v1/auth/me"), 405)

    async def test_validation_error_names_the_field(self, client, controller):
        body = assert_problem(await client.post("/v1/users", headers=controller.headers,
                                                json={"email": "x@example.com", "role": "staff"}), 422)
        assert body["errors"] == [{"loc": ["body", "full_name"], "msg": "Field required"}]
        assert "full_name" in body["detail"]

    async def test_malformed_json_is_422(self, client, controller):
        r = await client.post("/v1/users", headers={**controller.headers, "Content-Type": "application/json"},
                              content=b'{"email": ')
        assert_problem(r, 422)

    async def test_unknown_fields_are_rejected_not_ignored(self, client, controller):
        body = assert_problem(await client.patch(f"/v1/users/{controller.id}", headers=controller.headers,
                                                 json={"full_name": "X", "token_generation": 99}), 422)
        assert body["errors"][0]["loc"] == ["body", "token_generation"]

    async def test_wrong_content_type_is_415(self, client, controller):
        r = await client.post("/v1/users", headers={**controller.headers, "Content-Type": "text/plain"},
                              content=b"email=x")
        assert_problem(r, 415)

    async def test_oversized_body_is_413_by_content_length(self, client, controller):
        r = await client.post("/v1/users", headers={**controller.headers, "Content-Type": "application/json"},
                              content=b'{"full_name": "' + b"x" * 2_000_000 + b'"}')
        assert_problem(r, 413)

    async def test_oversized_chunked_body_is_413(self, client, controller):
        async def chunks():
            yield b'{"full_name": "'
            for _ in range(40):
                yield b"x" * 65536
            yield b'"}'

        r = await client.post("/v1/users", headers={**controller.headers, "Content-Type": "application/json"},
                              content=chunks())
        assert_problem(r, 413)

    async def test_response_carries_the_request_id(self, client):
        r = await client.get("/v1/nothing", headers={"X-Request-Id": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        assert r.json()["request_id"] == "abc-123"

    async def test_responses_are_not_cached_or_sniffed(self, client, controller):
        # Personal data must not stay in a shared or browser cache (GDPR Art. 32); problem documents and errors too.
        made = await client.post("/v1/registrants", headers=controller.headers,
                                 json={"kind": "person", "given_name": "Ei", "family_name": "Välimuistia"})
        for r in (made, await client.get(f"/v1/registrants/{made.json()['id']}", headers=controller.headers),
                  await client.get("/v1/nothing"), await client.get("/healthz")):
            assert r.headers["cache-control"] == "no-store", r.request.url
            assert r.headers["x-content-type-options"] == "nosniff"
            assert len(r.headers.get_list("cache-control")) == 1

    async def test_unsafe_request_id_is_replaced(self, client):
        r = await client.get("/healthz", headers={"X-Request-Id": "bad id\nwith newline"})
        assert r.headers["x-request-id"] != "bad id\nwith newline"


class TestUnexpectedErrors:
    async def test_500_has_request_id_and_no_internals(self, settings, caplog):
        app = create_app(settings)

        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("secret internal detail")

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            with caplog.at_level(logging.ERROR, logger="rekisteri"):
                r = await http.get("/boom", headers={"X-Request-Id": "req-500"})
        await app.state.db.engine.dispose()
        body = assert_problem(r, 500)
        assert "secret internal detail" not in r.text
        assert "Traceback" not in r.text
        assert body["request_id"] == "req-500"
        assert any("req-500" in rec.getMessage() for rec in caplog.records)


    async def test_500_is_answered_without_re_raising_so_the_connection_stays_open(self, settings):
        app = create_app(settings)

        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("boom")

        # raise_app_exceptions=True: an error Starlette re-raised after its 500 (which makes uvicorn close the
        # keep-alive connection) would surface here as an exception instead of a response.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            r = await http.get("/boom")
        await app.state.db.engine.dispose()
        assert_problem(r, 500)


class TestNoPersonalDataInLogs:
    @pytest.mark.parametrize("path", ["/v1/users?email=leak@example.com"])
    async def test_access_log_omits_query_strings(self, client, controller, caplog, path):
        with caplog.at_level(logging.INFO, logger="rekisteri.access"):
            await client.get(path, headers=controller.headers)
            await client.post("/v1/auth/token", data={"grant_type": "password", "username": "leak@example.com",
                                                      "password": "whatever-it-is"})
        assert "leak@example.com" not in caplog.text
        assert "/v1/users" in caplog.text

"""The lean `GET /v1/registrants` (app/registrants/lean.py) answers exactly as the route: the same status, body,
headers and audit entry over a table of inputs, and it leaves to the route whatever it does not answer itself."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.audit.sequencer import Sequencer
from app.auth import service as auth_service
from app.core.context import set_request
from app.main import create_app
from app.registrants import lean
from tests.conftest import unique_email

# (query, caller, answered by the lean route on PostgreSQL)
CASES = [
    ({"email": "{email}"}, "staff", True),
    ({"email": "{EMAIL}"}, "staff", True),
    ({"email": "{email}", "limit": "1"}, "staff", True),
    ({"email": "{email}", "limit": "900"}, "staff", True),  # capped as the route caps it
    ({"email": unique_email("nobody")}, "staff", True),
    ({"email": ""}, "staff", True),
    ({"ref": "booking:{ref}"}, "staff", True),
    ({"phone": "040 581 2799", "email": "{email}"}, "staff", True),
    ({"email": "{email}"}, "controller", True),
    ({"email": "{email}"}, "auditor", True),
    ({"ref": "booking:{ref}"}, "integration", True),  # sees what its system references
    ({"email": "{email}"}, "integration", True),
    ({}, "staff", True),
    ({"email": "{email}"}, "viewer", False),  # 403: no registrants:read
    ({"email": "{email}"}, "automation", False),
    ({"email": "{email}"}, None, False),  # 401
    ({"email": "{email}"}, "forged", False),  # 401
    ({"email": "{email}", "limit": "0"}, "staff", False),  # 422
    ({"email": "{email}", "limit": "01"}, "staff", False),
    ({"email": "{email}", "limit": "ten"}, "staff", False),
    ({"email": "{email}", "cursor": "abc"}, "staff", False),
    ({"email": "{email}", "status": "active"}, "staff", False),
    ({"email": "{email}", "access_token": "x"}, "staff", False),  # 401: tokens only in the header
    ({"email": "a\nb@example.com"}, "staff", False),  # 422: not single-line
    ({"email": "x" * 255}, "staff", False),  # 422: too long
    ({"ref": "booking"}, "staff", False),  # 422: not system:id
    ({"phone": "not a phone"}, "staff", False),  # 422
    ("email={email}&email={email}", "staff", False),  # repeated
]


def _query(query: dict[str, str] | str, registrant: dict) -> str:
    fill = {"email": registrant["email"], "EMAIL": registrant["email"].upper(), "ref": registrant["ref"]}
    if isinstance(query, str):
        return query.format(**fill)
    return urlencode({k: v.format(**fill) for k, v in query.items()})


def _headers(accounts, caller: str | None, request_id: str) -> dict[str, str]:
    headers = {"X-Request-Id": request_id}
    if caller == "forged":
        headers["Authorization"] = "Bearer " + accounts["staff"].token[:-4] + "AAAA"
    elif caller is not None:
        headers.update(accounts[caller].headers)
    return headers


def _same_body(response: httpx.Response) -> object:
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)  # each request has its own id
    return body


async def _entries(app, request_id: str) -> list[dict]:
    async with app.state.db.sessionmaker() as session:
        found = (await session.execute(select(AuditEntry).where(AuditEntry.request_id == request_id))).scalars().all()
    return [{k: getattr(e, k) for k in ("actor_type", "actor_id", "actor_name", "role", "action", "resource_type",
                                        "resource_id", "registrant_ids", "client_addr", "outcome", "details")}
            for e in found]


class TestLeanLookup:
    @pytest.mark.commits
    @pytest.mark.parametrize("read_commit", ["sync", "async"])
    async def test_answers_as_the_route_does(self, settings, accounts, is_postgres, read_commit):
        configured = settings.model_copy(update={"audit_sealing": "sequencer", "principal_cache_seconds": 1.0,
                                                 "audit_read_commit": read_commit})
        lean_app = create_app(configured)
        route_app = create_app(configured.model_copy(update={"lean_routes": False}))
        staff = accounts["staff"].headers
        try:
            async with (httpx.AsyncClient(transport=httpx.ASGITransport(app=lean_app), base_url="http://t") as fast,
                        httpx.AsyncClient(transport=httpx.ASGITransport(app=route_app), base_url="http://t") as slow):
                ref = uuid.uuid4().hex[:12]
                made = await slow.post("/v1/registrants", headers=staff, json={
                    "kind": "person", "given_name": "Lea", "family_name": "Lean", "email": unique_email("lean"),
                    "phone": "040 581 2799", "external_refs": [{"system": "booking", "id": ref}]})
                assert made.status_code == 201, made.text
                registrant, tags = {**made.json(), "ref": ref}, []
                for n, (query, caller, answered) in enumerate(CASES):
                    url, tag = "/v1/registrants?" + _query(query, registrant), uuid.uuid4().hex[:8]
                    # The route's answer; then the lean handler itself, with the caller's subject freshly cached.
                    plain = await slow.get(url, headers=_headers(accounts, caller, f"rt-{tag}"))
                    if caller in accounts:
                        await _cache(route_app, accounts[caller].token)
                    direct = await lean.lookup(_scope(url, _headers(accounts, caller, f"dr-{tag}")), lean_app.state)
                    assert (direct is not None) == (answered and is_postgres), (n, query, caller)
                    if direct is not None:
                        assert direct.status_code == plain.status_code == 200
                        assert direct.body == plain.content, (n, query, caller)
                    # Through the whole lean app, as a client sees it.
                    if caller in accounts:
                        await _cache(route_app, accounts[caller].token)
                    answer = await fast.get(url, headers=_headers(accounts, caller, f"ln-{tag}"))
                    assert (answer.status_code, _same_body(answer)) == (plain.status_code, _same_body(plain)), \
                        (n, query, caller)
                    assert answer.headers["x-request-id"] == f"ln-{tag}"
                    assert {k: v for k, v in answer.headers.items() if k != "x-request-id"} == \
                        {k: v for k, v in plain.headers.items() if k != "x-request-id"}
                    if n == 0:
                        assert [i["id"] for i in plain.json()["items"]] == [registrant["id"]]
                    tags.append((tag, direct is not None))
            await Sequencer(lean_app.state.db, configured).drain(wait=True)
            # Each request left the same audit entry (or none) whichever way it was answered.
            for tag, direct_answered in tags:
                route, direct, whole = [await _entries(lean_app, f"{way}-{tag}") for way in ("rt", "dr", "ln")]
                assert whole == route, tag
                assert direct == (route if direct_answered else []), tag
            assert any(route for route in [await _entries(lean_app, f"rt-{tag}") for tag, _ in tags])
        finally:
            await lean_app.state.db.engine.dispose()
            await route_app.state.db.engine.dispose()

    @pytest.mark.commits
    async def test_a_revoked_client_is_refused_at_once(self, settings, make_client, controller, is_postgres):
        configured = settings.model_copy(update={"audit_sealing": "sequencer", "principal_cache_seconds": 1.0})
        app = create_app(configured)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                machine = await make_client("integration")
                url = "/v1/registrants?" + urlencode({"ref": "booking:nobody"})
                assert (await http.get(url, headers=machine.headers)).status_code == 200
                answered = await lean.lookup(_scope(url, machine.headers), app.state)
                assert (answered is not None) == is_postgres
                revoked = await http.post(f"/v1/clients/{machine.id}/revoke", headers=controller.headers)
                assert revoked.status_code == 200
                assert await lean.lookup(_scope(url, machine.headers), app.state) is None
                assert (await http.get(url, headers=machine.headers)).status_code == 401
        finally:
            await app.state.db.engine.dispose()


async def _cache(app, token: str) -> None:
    """Read the token's subject into the per-process cache now (it is trusted for at most a second)."""
    async with app.state.db.sessionmaker() as session:
        await auth_service.principal_for_token(session, app.state.settings, token=token)


def _scope(url: str, headers: dict[str, str]) -> dict:
    """The ASGI scope of a GET, with the request's context bound as the middleware binds it."""
    path, _, query = url.partition("?")
    set_request(headers.get("X-Request-Id", uuid.uuid4().hex), "127.0.0.1")  # as httpx's ASGI transport
    return {"type": "http", "method": "GET", "path": path, "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}

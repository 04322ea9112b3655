"""The lean `PUT /v1/registrants/by-ref/{system}/{external_id}` (app/registrants/lean.py) answers exactly as the
route: the same status, body and headers over a sequence of requests, the same bytes the route reads back, and it
leaves to the route whatever it does not answer itself (errors, callers not cached, SQLite, inline sealing)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from app.auth import service as auth_service
from app.core.context import set_request
from app.main import create_app
from app.registrants import lean
from tests.registrants.conftest import person

BODY = person(email="lean.upsert@example.com", customer_types=["course"], address={
    "street": "Mannerheimintie 1", "postal_code": "00100", "city": "Helsinki"}, date_of_birth=None)
# (caller, body or raw bytes, extra headers, path system): each applied in turn to a reference of each app's own
STEPS = [
    ("integration", BODY, {}, "booking"),  # 201
    ("integration", {**BODY, "given_name": "Toka", "customer_types": ["season"]}, {}, "booking"),  # 200, changed
    ("integration", {**BODY, "given_name": "Toka", "customer_types": ["season"]}, {}, "booking"),  # 200, same
    ("integration", {**BODY, "given_name": "Kolmas"}, {"If-Match": '"1"'}, "booking"),  # 412
    ("integration", {**BODY, "given_name": "Kolmas"}, {"If-Match": '"2"'}, "booking"),  # 200
    ("integration", {**BODY, "given_name": "Neljäs"}, {"If-Match": "*"}, "booking"),  # 200
    ("integration", {**BODY, "given_name": "X"}, {"If-Match": "nonsense"}, "booking"),  # 412
    ("integration", {"kind": "organisation", "name": "Oy"}, {}, "booking"),  # 422: the kind cannot change
    ("integration", {**BODY, "phone": "not a phone"}, {}, "booking"),  # 422
    ("integration", {**BODY, "unknown": 1}, {}, "booking"),  # 422: extra field
    ("integration", b"{not json", {}, "booking"),  # refused
    ("integration", BODY, {}, "webshop"),  # 403: another system's reference
    ("staff", {**BODY, "given_name": "Staff"}, {}, "booking"),  # 200
    ("viewer", BODY, {}, "booking"),  # 403
    (None, BODY, {}, "booking"),  # 401
]


def _comparable(response: httpx.Response) -> tuple:
    body = response.json()
    for volatile in ("id", "created_at", "updated_at", "external_refs", "request_id"):
        body.pop(volatile, None)
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "content-length")}
    return response.status_code, body, headers


async def _cache(app, token: str) -> None:
    """Read the token's subject into the per-process cache now (it is trusted for at most a second)."""
    async with app.state.db.sessionmaker() as session:
        await auth_service.principal_for_token(session, app.state.settings, token=token)


def _scope(path: str, headers: dict[str, str]) -> dict:
    set_request(uuid.uuid4().hex, "127.0.0.1")  # as the middleware binds it
    return {"type": "http", "method": "PUT", "path": path, "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


class TestLeanUpsert:
    @pytest.mark.commits
    async def test_answers_as_the_route_does(self, settings, accounts, make_client, is_postgres):
        configured = settings.model_copy(update={"audit_sealing": "sequencer", "principal_cache_seconds": 1.0})
        lean_app = create_app(configured)
        route_app = create_app(configured.model_copy(update={"lean_routes": False}))
        callers = {"integration": await make_client("integration", "booking"), "staff": accounts["staff"],
                   "viewer": accounts["viewer"]}
        refs = {"fast": uuid.uuid4().hex[:12], "slow": uuid.uuid4().hex[:12]}
        try:
            async with (httpx.AsyncClient(transport=httpx.ASGITransport(app=lean_app), base_url="http://t") as fast,
                        httpx.AsyncClient(transport=httpx.ASGITransport(app=route_app), base_url="http://t") as slow):
                for n, (caller, body, extra, system) in enumerate(STEPS):
                    answers = {}
                    for way, http in (("fast", fast), ("slow", slow)):
                        headers = {**(callers[caller].headers if caller else {}), **extra}
                        if caller:
                            await _cache(route_app, callers[caller].token)
                        content = body if isinstance(body, bytes) else json.dumps(body).encode()
                        answers[way] = await http.put(f"/v1/registrants/by-ref/{system}/{refs[way]}", content=content,
                                                      headers={**headers, "Content-Type": "application/json"})
                    assert _comparable(answers["fast"]) == _comparable(answers["slow"]), (n, answers["fast"].text)
                    assert answers["fast"].status_code < 300 or answers["fast"].headers["content-type"] == \
                        "application/problem+json", n
                # The handler itself answers what it should, with the bytes the route reads back.
                booking = callers["integration"]
                path = f"/v1/registrants/by-ref/booking/{uuid.uuid4().hex[:12]}"
                for status, body in ((201, BODY), (200, {**BODY, "given_name": "Toka", "address": None}),
                                     (200, {**BODY, "address": {"street": "Ö-katu 2", "postal_code": "00200",
                                                                "city": "Espoo", "country": "SE"}})):
                    await _cache(route_app, booking.token)
                    direct = await lean.upsert(_scope(path, {**booking.headers, "Content-Type": "application/json"}),
                                               lean_app.state, json.dumps(body).encode())
                    assert (direct is not None) == is_postgres
                    if direct is not None:
                        assert direct.status_code == status
                        made = json.loads(direct.body)
                        read = await slow.get(f"/v1/registrants/{made['id']}", headers=booking.headers)
                        assert direct.body == read.content and direct.headers["etag"] == read.headers["etag"]
                    else:
                        await slow.put(path, headers=booking.headers, json=body)
                # Refusals and callers not cached are left to the route.
                refused = await lean.upsert(_scope(path, {**booking.headers, "Content-Type": "application/json"}),
                                            lean_app.state, json.dumps({"kind": "organisation", "name": "X"}).encode())
                assert refused is None
        finally:
            await lean_app.state.db.engine.dispose()
            await route_app.state.db.engine.dispose()

"""Ownership (OWASP API1): a second integration naming the first one's ids gets 404 on every endpoint that takes
an id, and the first one's objects are unchanged afterwards."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest

from app.cli import openapi_document
from app.core import clock as service_clock
from tests.conftest import create_client, unique_email

SPEC = json.loads(openapi_document())
# Public operations (`security: []`, e.g. the one-time confirmation link) belong to no caller.
ID_OPERATIONS = [(path, method) for path, item in SPEC["paths"].items() for method in item
                 if "{" in path and path != "/v1/register/versions/{number}" and item[method].get("security") != []]
# Endpoints an integration may call at all: on these the answer must be 404, elsewhere 403 is as good.
INTEGRATION_PATHS = ("/v1/registrants", "/v1/consents", "/v1/waitlist")


def _system() -> str:
    return "sys-" + uuid.uuid4().hex[:10]


def _slot() -> dict[str, Any]:
    return {"starts_at": (service_clock.utcnow() + timedelta(days=1)).isoformat(), "description": "Laulutunti"}


def _bodies(tag: str, a_system: str) -> dict[tuple[str, str], Any]:
    """A valid body for each operation that takes one, so validation never hides the ownership answer."""
    grant = {"action": "grant", "purpose": "newsletter", "channel": "email", "source": "web_form",
             "evidence": {"text": "Uutiskirje", "policy_version": "1"}}
    return {
        ("/v1/registrants/{registrant_id}", "patch"): {"given_name": "Mallory"},
        ("/v1/registrants/{registrant_id}/records", "post"): {"type": "order", "occurred_at": "2026-01-01T10:00:00Z",
                                                              "external_id": uuid.uuid4().hex},
        ("/v1/registrants/{registrant_id}/consents", "post"): grant,
        ("/v1/registrants/{registrant_id}/guardians", "post"): {"guardian_id": str(uuid.uuid4())},
        ("/v1/registrants/by-ref/{system}/{external_id}", "put"): {"kind": "person", "given_name": "Mallory",
                                                                   "family_name": "M", "email": unique_email()},
        ("/v1/requests/{request_id}/transitions", "post"): {"action": "start"},
        ("/v1/users/{user_id}", "patch"): {"full_name": "Mallory"},
    }


@pytest.fixture
async def two_systems(client, controller, register_profile):
    """Integration A with a registrant, a record, a consent, an entry and an open first_n notice; integration B."""
    a = await create_client(client, controller, "integration", _system())
    b = await create_client(client, controller, "integration", _system())
    tag = "own-" + uuid.uuid4().hex[:8]
    ref = uuid.uuid4().hex[:12]
    r = await client.post("/v1/registrants", headers=a.headers, json={
        "kind": "person", "given_name": "Aino", "family_name": "A", "email": unique_email("aino"),
        "external_refs": [{"system": a.system, "id": ref}]})
    assert r.status_code == 201, r.text
    registrant = r.json()["id"]
    r = await client.post(f"/v1/registrants/{registrant}/records", headers=a.headers,
                          json={"type": "order", "occurred_at": "2026-01-01T10:00:00Z", "data": {"total": 10}})
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/registrants/{registrant}/consents", headers=a.headers, json={
        "action": "grant", "purpose": "newsletter", "channel": "email", "source": "web_form",
        "evidence": {"text": "Uutiskirje", "policy_version": "1"}})
    assert r.status_code == 201, r.text
    event = r.json()["event"]["id"] if "event" in r.json() else r.json()["id"]
    entries = []
    for _ in range(2):
        r = await client.post("/v1/waitlist", headers=a.headers, json={
            "given_name": "Aino", "family_name": "A", "age": 30, "email": unique_email("aino"),
            "channels": ["email"], "interests": ["cancellations"], "tags": [tag]})
        assert r.status_code == 201, r.text
        entries.append(r.json()["id"])
    r = await client.post("/v1/waitlist/notifications", headers=a.headers, json={
        "interest": "cancellations", "message": "Vapaa aika", "slot": _slot(), "tags": [tag], "mode": "first_n",
        "limit": 1})
    assert r.status_code == 201, r.text
    ids = {"registrant_id": registrant, "event_id": event, "entry_id": entries[0], "notification_id": r.json()["id"],
           "user_id": controller.id, "client_id": a.id, "request_id": str(uuid.uuid4()), "system": a.system,
           "external_id": ref, "guardian_id": registrant}
    return a, b, ids, tag


class TestSecondIntegration:
    async def test_every_endpoint_taking_an_id_is_404(self, client, two_systems):
        a, b, ids, tag = two_systems
        bodies = _bodies(tag, a.system)
        answers = {}
        for path, method in ID_OPERATIONS:
            url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
            body = bodies.get((path, method))
            r = await client.request(method.upper(), url, headers=b.headers, json=body)
            answers[f"{method.upper()} {path}"] = r.status_code
            expected = {404} if path.startswith(INTEGRATION_PATHS) else {403, 404}
            if path == "/v1/registrants/by-ref/{system}/{external_id}":
                expected = {403}  # B may not write under A's system name, and learns nothing more
            assert r.status_code in expected, (method, path, r.status_code, r.text)
        assert answers, "no operation takes an id?"
        # A's objects are untouched: its notice still has its next wave, its entry is still active.
        r = await client.post(f"/v1/waitlist/notifications/{ids['notification_id']}/next", headers=a.headers)
        assert r.status_code == 200, r.text
        r = await client.get(f"/v1/waitlist/{ids['entry_id']}", headers=a.headers)
        assert r.status_code == 200 and r.json()["status"] == "active", r.text
        r = await client.get(f"/v1/registrants/{ids['registrant_id']}", headers=a.headers)
        assert r.json()["given_name"] == "Aino"
        r = await client.post(f"/v1/waitlist/notifications/{ids['notification_id']}/close", headers=a.headers)
        assert r.status_code == 200, r.text

    async def test_another_client_of_the_same_system_shares_its_notices(self, client, controller, two_systems):
        a, _, ids, _ = two_systems
        colleague = await create_client(client, controller, "integration", a.system)
        r = await client.get(f"/v1/waitlist/notifications/{ids['notification_id']}", headers=colleague.headers)
        assert r.status_code == 200, r.text

    async def test_staff_see_every_notice(self, client, controller, two_systems):
        _, _, ids, _ = two_systems
        r = await client.get(f"/v1/waitlist/notifications/{ids['notification_id']}", headers=controller.headers)
        assert r.status_code == 200, r.text


class TestSharedRegistrant:
    async def test_records_are_visible_only_to_the_system_that_wrote_them(self, client, controller,
                                                                         register_profile):
        a = await create_client(client, controller, "integration", _system())
        b = await create_client(client, controller, "integration", _system())
        r = await client.post("/v1/registrants", headers=controller.headers, json={
            "kind": "person", "given_name": "Jaettu", "family_name": "J", "email": unique_email("shared"),
            "external_refs": [{"system": a.system, "id": "a1"}, {"system": b.system, "id": "b1"}]})
        assert r.status_code == 201, r.text
        url = f"/v1/registrants/{r.json()['id']}/records"
        for account, external in ((a, "order-a"), (b, "order-b")):
            made = await client.post(url, headers=account.headers, json={
                "type": "order", "occurred_at": "2026-01-01T10:00:00Z", "external_id": external})
            assert made.status_code == 201, made.text
        seen = {acc.system: [rec["external_id"] for rec in (await client.get(url, headers=acc.headers)).json()["items"]]
                for acc in (a, b)}
        assert seen == {a.system: ["order-a"], b.system: ["order-b"]}
        staff = (await client.get(url, headers=controller.headers)).json()["items"]
        assert sorted(rec["external_id"] for rec in staff) == ["order-a", "order-b"]

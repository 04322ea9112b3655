"""Children on UniikkiLista: each child its own registrant linked to the guardian, the guardian's contact used
for notices, siblings never merged, age computed on the day (GDPR Art. 8, Tietosuojalaki § 5, 361/1983)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from app.core import clock as service_clock
from tests.conftest import PASSWORD, password_login
from tests.waitlist.conftest import entry, notice, phone
from tests.waitlist.test_waitlist import consent_states, deliveries, messages


@pytest.fixture(autouse=True)
def roomy_limits(app):
    """Limits high enough for a test that signs several people up with one account."""
    before = app.state.settings
    app.state.settings = before.model_copy(update={"waitlist_signups_per_client_per_minute": 10_000,
                                                   "waitlist_notifications_per_client_per_hour": 10_000})
    yield
    app.state.settings = before


def pirjo(tag: str) -> dict:
    """The guardian of Ella and Eero."""
    return {"given_name": "Pirjo", "family_name": "Esimerkki", "email": f"pirjo.{tag}@example.fi", "phone": phone()}


def kid(tag: str, given: str, age: int, guardian: dict, **overrides) -> dict:
    """A child put on the list by a guardian: no own contact details, notices to the guardian."""
    return entry(tag, given_name=given, family_name="Esimerkki", age=age, email=None, phone=None, guardian=guardian,
                 **overrides)


class TestSiblings:
    async def test_siblings_sharing_the_parents_email_are_two_people(self, client, controller, join, tag):
        guardian = pirjo(tag)
        ella = await join(kid(tag, "Ella", 9, guardian))
        eero = await join(kid(tag, "Eero", 7, guardian))
        assert eero["id"] != ella["id"] and eero["registrant_id"] != ella["registrant_id"]
        assert ella["guardian_id"] == eero["guardian_id"] and ella["contact_holder"] == "guardian"
        assert ella["email"] == eero["email"] == guardian["email"]
        # Eero's SMS consent is on his own registrant, given by the guardian.
        assert (await consent_states(client, controller, eero["registrant_id"]))[("waitlist", "sms")] == "granted"
        # The same child again (names and age) is the same entry; the guardian is the same registrant.
        again = await join(kid(tag, "ella", 9, guardian), status=200)
        assert again["id"] == ella["id"]
        g = (await client.get(f"/v1/registrants/{ella['guardian_id']}", headers=controller.headers)).json()
        assert {c["registrant_id"] for c in g["children"]} == {ella["registrant_id"], eero["registrant_id"]}
        assert g["given_name"] == "Pirjo" and g["email"] == guardian["email"]
        child = (await client.get(f"/v1/registrants/{ella['registrant_id']}", headers=controller.headers)).json()
        assert child["email"] is None and child["birth_date_estimated"] is True
        assert [x["registrant_id"] for x in child["guardians"]] == [ella["guardian_id"]]
        assert child["guardians"][0]["source"] == "api" and child["guardians"][0]["linked_at"].endswith("Z") or \
            child["guardians"][0]["linked_at"].endswith("+00:00")

    async def test_the_guardian_sees_and_removes_all_their_childrens_entries(self, client, controller, join, tag):
        guardian = pirjo(tag)
        ella = await join(kid(tag, "Ella", 9, guardian))
        eero = await join(kid(tag, "Eero", 7, guardian, interests=["enrolments"]))
        other = await join(kid(tag, "Ella", 9, {**pirjo(tag), "email": f"toinen.{tag}@example.fi"}))  # another Ella
        listed = await client.get("/v1/waitlist", headers=controller.headers,
                                  params={"guardian_id": ella["guardian_id"]})
        assert [e["id"] for e in listed.json()["items"]] == [ella["id"], eero["id"]]
        assert other["registrant_id"] != ella["registrant_id"]
        for made in (ella, eero):
            assert (await client.delete(f"/v1/waitlist/{made['id']}", headers=controller.headers)).status_code == 200
        listed = await client.get("/v1/waitlist", headers=controller.headers,
                                  params={"guardian_id": ella["guardian_id"]})
        assert listed.json()["items"] == []

    async def test_a_date_of_birth_finds_the_child_an_age_made(self, client, controller, join, tag):
        guardian = pirjo(tag)
        first = await join(kid(tag, "Ella", 9, guardian))
        today = service_clock.utcnow().date()
        born = date(today.year - 9, 1, 1) if (today.month, today.day) != (1, 1) else date(today.year - 10, 1, 2)
        body = kid(tag, "Ella", 9, guardian)
        body.pop("age")
        again = await join({**body, "date_of_birth": born.isoformat()}, status=200)
        assert again["registrant_id"] == first["registrant_id"]


class TestTurningThirteen:
    async def test_a_child_turning_13_between_two_notices(self, app, client, controller, join, tag, clock):
        today = clock.utcnow().date()
        clock.freeze(datetime.combine(today, time(23, 58), UTC))  # two minutes before her 13th birthday
        login = await password_login(client, controller.email, PASSWORD)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        tomorrow = today + timedelta(days=1)
        guardian = pirjo(tag)
        body = kid(tag, "Ella", 12, guardian, channels=["email"])
        body.pop("age")
        r = await client.post("/v1/waitlist", headers=headers, json={
            **body, "date_of_birth": tomorrow.replace(year=tomorrow.year - 13).isoformat()})
        assert r.status_code == 201, r.text
        made = r.json()
        child = made["registrant_id"]
        first = (await client.post("/v1/waitlist/notifications", headers=headers, json=notice(tag))).json()
        sent = await deliveries(app, first["id"])
        assert [(str(d.registrant_id), d.channel) for d in sent] == [(child, "email")]
        assert (await messages(app, [d.id for d in sent]))[0].payload["to"] == guardian["email"]
        own = {"action": "grant", "purpose": "waitlist", "channel": "email", "source": "web_form",
               "evidence": {"given_by": "self"}}
        clock.advance(timedelta(seconds=1))  # the frozen clock moves on, so the ledger has an order
        refused = await client.post(f"/v1/registrants/{child}/consents", headers=headers, json=own)
        assert refused.status_code == 422 and made["guardian_id"] in refused.json()["errors"][0]["msg"]
        # Her own withdrawal counts at any age, at once.
        assert (await client.post(f"/v1/registrants/{child}/consents", headers=headers,
                                  json={**own, "action": "withdraw"})).status_code == 201
        clock.advance(timedelta(seconds=1))
        quiet = (await client.post("/v1/waitlist/notifications", headers=headers, json=notice(tag))).json()
        assert quiet["wave_recipients"] == 0
        clock.advance(timedelta(minutes=5))  # she is 13 now: her own consent counts from today
        accepted = await client.post(f"/v1/registrants/{child}/consents", headers=headers, json=own)
        assert accepted.status_code == 201 and accepted.json()["given_by"] == "self"
        second = (await client.post("/v1/waitlist/notifications", headers=headers, json=notice(tag))).json()
        sent = await deliveries(app, second["id"])
        assert [(str(d.registrant_id), d.channel) for d in sent] == [(child, "email")]


class TestGuardianErased:
    async def test_the_child_keeps_its_entry_without_the_guardians_contact_and_is_flagged(
            self, app, client, controller, join, tag):
        from tests.registrants.test_erasure import _erase
        guardian = pirjo(tag)
        made = await join(kid(tag, "Ella", 9, guardian))
        await _erase(app, made["guardian_id"])
        entry_now = (await client.get(f"/v1/waitlist/{made['id']}", headers=controller.headers)).json()
        assert entry_now["status"] == "active" and entry_now["registrant_id"] == made["registrant_id"]
        assert (entry_now["email"], entry_now["phone"], entry_now["guardian_id"]) == (None, None, None)
        child = (await client.get(f"/v1/registrants/{made['registrant_id']}", headers=controller.headers)).json()
        assert child["status"] == "active" and child["given_name"] == "Ella" and child["guardians"] == []
        assert "guardian" in child["attention"]
        r = await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))
        assert r.json()["wave_recipients"] == 0  # nobody's address is left to send to


class TestAccessPackages:
    async def test_the_entry_is_in_the_childs_and_the_guardians_package(self, app, client, controller, join, tag):
        from app.subject_requests import package
        guardian = pirjo(tag)
        made = await join(kid(tag, "Ella", 9, guardian))
        wiring = app.state.wiring
        sections = {s.name: s for s in wiring.package_sections}
        async with app.state.db.sessionmaker() as session:
            import uuid
            own = await sections["waitlist_entries"].build(session, uuid.UUID(made["registrant_id"]))
            held = await sections["waitlist_entries_as_guardian"].build(session, uuid.UUID(made["guardian_id"]))
        assert [str(e["id"]) for e in own] == [made["id"]]
        assert [(str(e["id"]), str(e["child_id"])) for e in held] == [(made["id"], made["registrant_id"])]
        assert package.FORMAT_VERSION == "2.1"

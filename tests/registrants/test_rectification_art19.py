"""Rectification applied through the normal validation, and Art. 19 notices to every recipient."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from pydantic import SecretStr

from app.auth.principal import SYSTEM
from app.core.errors import Invalid
from app.outbox.models import OutboxMessage
from app.outbox.worker import Worker
from app.wiring import build as build_wiring
from app.registrants import erasure, recipients
from app.registrants.rectification import Change, Decision, rectify
from tests.conftest import TEST_ERASURE_KEYS
from tests.outbox.conftest import db, http_server, outbox_settings, receiver, smtp_server  # noqa: F401 - fixtures


async def _person(client, headers, **extra) -> dict:
    body = {"kind": "person", "given_name": "Ville", "family_name": "Virhe", "email": f"v.{uuid.uuid4().hex[:8]}@example.com",
            "phone": "040 111 2222", "language": "fi", **extra}
    r = await client.post("/v1/registrants", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _rectify(app, rid: str, changes: list[Change], decisions: list[Decision]):
    async with app.state.db.sessionmaker() as session:
        outcomes = await rectify(session, actor=SYSTEM, registrant_id=uuid.UUID(rid), request_id=uuid.uuid4(),
                                 changes=changes, decisions=decisions, loc=["body", "decisions"])
        await session.commit()
        return outcomes


class TestRectification:
    async def test_approved_applied_rejected_kept_stale_reported(self, app, client, controller, register_profile):
        person = await _person(client, controller.headers)
        outcomes = await _rectify(app, person["id"], [
            Change("family_name", "Virhe", "Oikea"),
            Change("phone", "040 111 2222", "050 333 4444"),
            Change("given_name", "Wille", "Ville-Veikko"),  # the person saw a value that is not there now
            Change("email", person["email"], "other@example.com"),
        ], [Decision(True), Decision(True), Decision(True), Decision(False, "the address is still in use")])
        assert [(o.field, o.outcome) for o in outcomes] == [
            ("family_name", "applied"), ("phone", "applied"), ("given_name", "stale"), ("email", "rejected")]
        after = (await client.get(f"/v1/registrants/{person['id']}", headers=controller.headers)).json()
        assert after["family_name"] == "Oikea" and after["phone"] == "+358503334444"
        assert after["given_name"] == "Ville" and after["email"] == person["email"]
        history = (await client.get(f"/v1/registrants/{person['id']}/history", headers=controller.headers)).json()
        last = history["items"][-1]
        assert last["actor_type"] == "request"
        assert set(last["fields"]) == {"family_name", "phone"}

    @pytest.mark.parametrize(("change", "loc"), [
        (Change("status", "active", "erased"), ["body", "decisions", 0, "field"]),
        (Change("phone", "040 111 2222", "not a phone"), ["body", "decisions", 0, "corrected_value"]),
    ])
    async def test_unknown_field_or_invalid_value_is_422_and_changes_nothing(self, app, client, controller,
                                                                             register_profile, change, loc):
        person = await _person(client, controller.headers)
        with pytest.raises(Invalid) as refused:
            await _rectify(app, person["id"], [change], [Decision(True)])
        assert refused.value.errors[0]["loc"] == loc
        after = (await client.get(f"/v1/registrants/{person['id']}", headers=controller.headers)).json()
        assert after["version"] == person["version"]


class TestArt19Notices:
    @pytest.mark.commits
    async def test_every_integration_and_profile_recipient_is_told_signed_until_acknowledged(
        self, app, client, controller, register_profile, db, receiver, outbox_settings, http_server,  # noqa: F811
        clock,
    ):
        original = app.state.settings
        # The local receiver is on loopback, which the SSRF guard refuses unless allowlisted.
        app.state.settings = original.model_copy(update={"callback_allowlist": ["127.0.0.1"]})
        try:
            await self._scenario(app, client, controller, db, receiver, outbox_settings, http_server[1], clock)
        finally:
            app.state.settings = original

    async def _scenario(self, app, client, controller, db, receiver, outbox_settings, port, clock):  # noqa: F811
        made = await client.post("/v1/clients", headers=controller.headers, json={
            "name": "Booking", "role": "integration", "system": "booking",
            "callback_url": f"http://127.0.0.1:{port}/booking-events"})
        assert made.status_code == 201, made.text
        receiver.secrets["/booking-events"] = made.json()["callback_secret"]
        profile = (await client.get("/v1/register", headers=controller.headers)).json()["profile"]
        profile["recipients"][0]["callback_url"] = f"http://127.0.0.1:{port}/processor-events"
        assert (await client.put("/v1/register", headers=controller.headers, json=profile)).status_code == 200
        settings = outbox_settings.model_copy(update={"recipient_signing_secret": SecretStr("recipient-secret-" + "r" * 20)})
        hooks = build_wiring(settings).outbox  # the recipient key comes from these settings
        receiver.secrets["/processor-events"] = "recipient-secret-" + "r" * 20

        ref = uuid.uuid4().hex[:8]
        person = await _person(client, controller.headers, external_refs=[{"system": "booking", "id": ref}])
        rid = uuid.UUID(person["id"])
        async with app.state.db.sessionmaker() as session:
            refs = await recipients.references_by_system(session, registrant_id=rid)
            await erasure.erase(session, actor=SYSTEM, registrant_id=rid, key=TEST_ERASURE_KEYS, request_ref="test",
                                 steps=app.state.wiring.erasure_steps)
            told = await recipients.notify(session, registrant_id=rid, event="erased", fields=["email", "family_name"],
                                           refs=refs, request_id=None)
            await session.commit()
        assert {t.kind for t in told} == {"integration", "profile_recipient"}

        receiver.statuses.extend([503])  # the first delivery fails; the retry must get through
        worker = Worker(db, settings, hooks=hooks)
        try:
            await worker.drain()
            clock.advance(timedelta(hours=1))  # past the backoff
            await worker.drain()
        finally:
            await worker.aclose()
        paths = [r["path"] for r in receiver.requests]
        assert sorted(set(paths)) == ["/booking-events", "/processor-events"]
        assert len(paths) == 3  # one retried after the 503
        booking = next(r for r in receiver.requests if r["path"] == "/booking-events" and r["signed"])
        assert booking["json"]["type"] == "registrant.erased"
        assert booking["json"]["external_ids"] == [ref]
        assert booking["json"]["fields"] == ["email", "family_name"]
        assert "Virhe" not in str(booking["json"])  # which fields, never their values
        assert all(r["signed"] for r in receiver.requests)
        async with app.state.db.sessionmaker() as session:
            statuses = {(await session.get(OutboxMessage, t.message_id)).status for t in told}
        assert statuses == {"sent"}

"""Completing rectification, erasure, restriction and objection requests does exactly their work."""

from __future__ import annotations

import uuid

from tests.subject_requests.conftest import person


async def _get(client, me, path: str) -> dict:
    r = await client.get(path, headers=me.headers)
    assert r.status_code == 200, r.text
    return r.json()


class TestRectification:
    async def test_approved_changes_applied_rejected_and_stale_reported(self, client, me, registrant, file, advance,
                                                                       act):
        rid = await registrant(family_name="Meikalainen", phone="040 111 2222")
        made = await file("rectification", registrant_id=rid, changes=[
            {"field": "family_name", "current_value": "Meikalainen", "corrected_value": "Meikäläinen"},
            {"field": "phone", "current_value": "040 111 2222", "corrected_value": "050 999 8888"},
            {"field": "given_name", "current_value": "Mirja", "corrected_value": "Maija-Liisa"}])
        await advance(made["id"], rid, until="in_progress")
        missing = await act(made["id"], "complete")
        assert missing.status_code == 422 and missing.json()["errors"][0]["loc"] == ["body", "decisions"]
        unexplained = await act(made["id"], "complete", decisions=[{"approve": True}, {"approve": False},
                                                                   {"approve": True}])
        assert unexplained.status_code == 422  # a rejection needs a reason
        done = await act(made["id"], "complete", decisions=[
            {"approve": True}, {"approve": False, "reason": "the old number is still in use"}, {"approve": True}])
        assert done.status_code == 200, done.text
        outcomes = {c["field"]: c["outcome"] for c in done.json()["outcome"]["changes"]}
        assert outcomes == {"family_name": "applied", "phone": "rejected", "given_name": "stale"}
        after = await _get(client, me, f"/v1/registrants/{rid}")
        assert after["family_name"] == "Meikäläinen" and after["phone"] == "+358401112222"
        assert after["given_name"] == "Maija"
        history = await _get(client, me, f"/v1/registrants/{rid}/history")
        assert history["items"][-1]["actor_id"] == made["id"]

    async def test_a_corrected_value_that_fails_validation_changes_nothing(self, client, me, registrant, file,
                                                                          advance, act):
        rid = await registrant()
        made = await file("rectification", registrant_id=rid, changes=[
            {"field": "phone", "current_value": "040 581 2799", "corrected_value": "not a phone number"}])
        await advance(made["id"], rid, until="in_progress")
        r = await act(made["id"], "complete", decisions=[{"approve": True}])
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "decisions", 0, "corrected_value"]
        current = await _get(client, me, f"/v1/requests/{made['id']}")
        assert current["status"] == "in_progress"
        assert (await _get(client, me, f"/v1/registrants/{rid}"))["phone"] == "+358405812799"


class TestErasure:
    async def test_erasure_erases_names_what_it_kept_and_refuses_twice(self, client, me, registrant, file, advance,
                                                                        act):
        rid = await registrant(external_refs=[{"system": "booking", "id": uuid.uuid4().hex[:10]}])
        await client.post(f"/v1/registrants/{rid}/records", headers=me.headers, json={
            "type": "invoice", "occurred_at": "2026-03-01T10:00:00Z", "source": "booking",
            "external_id": uuid.uuid4().hex, "data": {"sum": "120.00"}})
        made = await file("erasure", registrant_id=rid)
        done = await advance(made["id"], rid)
        assert done["status"] == "completed"
        kept = done["outcome"]["erasure"]["kept"]
        assert [k["what"] for k in kept] == ["relationship_record:accounting_vouchers"]
        assert "17(3)(b)" in kept[0]["ground"]
        after = await _get(client, me, f"/v1/registrants/{rid}")
        assert after["status"] == "erased" and after["email"] is None and after["given_name"] is None
        again = await file("erasure", registrant_id=rid)
        await advance(again["id"], rid, until="in_progress")
        refused = await act(again["id"], "complete")
        assert refused.status_code == 409
        assert (await _get(client, me, f"/v1/requests/{again['id']}"))["status"] == "in_progress"


class TestRestriction:
    async def test_restrict_then_lift(self, client, me, registrant, file, advance, act, make_client):
        booking = await make_client("integration", "booking")
        rid = await registrant(external_refs=[{"system": "booking", "id": uuid.uuid4().hex[:10]}])
        made = await file("restriction", registrant_id=rid, recipients_requested=True)
        done = await advance(made["id"], rid)
        assert "lift_restriction" in done["allowed_actions"]
        # Art. 19: the person asked, so the answer names the recipients told of the restriction.
        told = {n["recipient"] for n in done["outcome"]["recipients"]}
        assert done["outcome"]["recipients_disclosed"] == sorted(told)
        assert (await client.get(f"/v1/registrants/{rid}", headers=booking.headers)).status_code == 404
        assert (await _get(client, me, f"/v1/registrants/{rid}"))["status"] == "restricted"
        short = await act(made["id"], "lift_restriction", reason="", person_informed=True)
        assert short.status_code == 422
        # Art. 18(3): the person is told before the restriction is lifted (added by issue 14).
        untold = await act(made["id"], "lift_restriction", reason="the accuracy was checked", person_informed=False)
        assert untold.status_code == 422 and untold.json()["errors"][0]["loc"] == ["body", "person_informed"]
        lifted = await act(made["id"], "lift_restriction", reason="the accuracy was checked", person_informed=True)
        assert lifted.status_code == 200, lifted.text
        assert lifted.json()["outcome"]["restriction_lifted"]["person_informed_at"]
        assert lifted.json()["status"] == "completed" and "lift_restriction" not in lifted.json()["allowed_actions"]
        assert (await client.get(f"/v1/registrants/{rid}", headers=booking.headers)).status_code == 200
        twice = await act(made["id"], "lift_restriction", reason="once more", person_informed=True)
        assert twice.status_code == 409

    async def test_lift_is_refused_for_other_types(self, client, me, registrant, file, advance, act):
        rid = await registrant()
        made = await file("access", registrant_id=rid)
        await advance(made["id"], rid)
        assert (await act(made["id"], "lift_restriction", reason="not a restriction",
                          person_informed=True)).status_code == 409


class TestObjection:
    async def test_direct_marketing_objection_takes_effect_at_once(self, client, me, registrant, file, advance):
        rid = await registrant()
        granted = await client.post(f"/v1/registrants/{rid}/consents", headers=me.headers, json={
            "action": "grant", "purpose": "newsletter", "channel": "email", "source": "web_form"})
        assert granted.status_code == 201, granted.text
        made = await file("objection", registrant_id=rid, purposes=["direct_marketing"], channel="letter",
                          signed=True)
        done = await advance(made["id"], rid)
        assert [o["purpose"] for o in done["outcome"]["objections"]] == ["direct_marketing"]
        state = {(s["purpose"], s["channel"]): s["state"] for s in
                 (await _get(client, me, f"/v1/registrants/{rid}/consents"))["states"]}
        assert state[("newsletter", "email")] == state[("direct_marketing", "sms")] == "objected"
        audience = await _get(client, me, "/v1/audience?purpose=newsletter&channel=email&limit=5000")
        assert rid not in {m["registrant_id"] for m in audience["items"]}


class TestRecipientsListed:
    async def test_the_request_lists_each_recipient_and_its_acknowledgement(self, client, me, registrant, file,
                                                                            advance, app, allow_local_callbacks):
        made_client = await client.post("/v1/clients", headers=me.headers, json={
            "name": "Webshop", "role": "integration", "system": "webshop",
            "callback_url": "http://127.0.0.1:9/events"})
        assert made_client.status_code == 201, made_client.text
        rid = await registrant(**{k: v for k, v in person().items() if k == "email"},
                               external_refs=[{"system": "webshop", "id": uuid.uuid4().hex[:10]}])
        made = await file("restriction", registrant_id=rid)
        await advance(made["id"], rid)
        detail = await _get(client, me, f"/v1/requests/{made['id']}")
        assert [(r["recipient"], r["acknowledged"]) for r in detail["recipients"]] == [("Webshop (webshop)", False)]
        assert detail["recipients"][0]["status"] == "pending"

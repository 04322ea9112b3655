"""POST /v1/requests/{id}/transitions: the lifecycle, refusals, identity, extensions, the free interval, fees."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

ACTIONS = ("verify", "send_confirmation", "link", "start", "extend", "complete", "reject", "withdraw")
ALLOWED = {
    "received": {"verify", "send_confirmation", "link", "extend", "reject", "withdraw"},
    "verified": {"start", "link", "extend", "reject", "withdraw"},
    "in_progress": {"complete", "link", "extend", "reject", "withdraw"},
    "completed": set(), "rejected": set(), "withdrawn": set(),
}
TARGET = {"verify": "verified", "start": "in_progress", "complete": "completed", "reject": "rejected",
          "withdraw": "withdrawn"}


def fields_for(action: str, registrant_id: str) -> dict:
    """A valid body of each action."""
    return {"verify": {"method": "strong_electronic_identification", "evidence_ref": "eid-1",
                       "registrant_id": registrant_id},
            "send_confirmation": {"to": "email", "registrant_id": registrant_id},
            "link": {"registrant_id": registrant_id}, "extend": {"reason": "many records", "person_informed": True},
            "reject": {"reason": "not a request"}}.get(action, {})


class TestAuth:
    async def test_anonymous_401(self, client, file):
        made = await file()
        r = await client.post(f"/v1/requests/{made['id']}/transitions", json={"action": "withdraw"})
        assert r.status_code == 401

    async def test_roles_without_requests_write_403(self, client, accounts, file):
        made = await file()
        for role in ("auditor", "viewer", "integration"):
            r = await client.post(f"/v1/requests/{made['id']}/transitions", headers=accounts[role].headers,
                                  json={"action": "withdraw"})
            assert r.status_code == 403, role

    async def test_staff_and_the_filing_automation_client_may(self, client, accounts, file):
        for role in ("staff", "automation"):
            made = await file(account=accounts["automation"])
            r = await client.post(f"/v1/requests/{made['id']}/transitions", headers=accounts[role].headers,
                                  json={"action": "withdraw"})
            assert r.status_code == 200, (role, r.text)

    async def test_automation_may_only_withdraw(self, accounts, file, registrant, act):
        bot = accounts["automation"]
        made = await file(account=bot, registrant_id=await registrant())
        for action in ("verify", "send_confirmation", "link", "start", "extend", "complete", "reject"):
            r = await act(made["id"], action, account=bot, **fields_for(action, made["registrant_id"]))
            assert r.status_code == 403, (action, r.text)
        assert (await act(made["id"], "withdraw", account=bot)).json()["status"] == "withdrawn"

    async def test_unknown_request_404(self, act):
        assert (await act(str(uuid.uuid4()), "withdraw")).status_code == 404


class TestLifecycle:
    async def test_access_from_received_to_completed(self, client, controller, file, registrant, act):
        person = await registrant()
        made = await file()
        assert made["registrant_id"] is None
        verified = (await act(made["id"], "verify", method="strong_electronic_identification",
                              evidence_ref="ftn-123", registrant_id=person)).json()
        assert verified["status"] == "verified" and verified["registrant_id"] == person
        assert verified["verification"]["method"] == "strong_electronic_identification"
        assert verified["verification"]["by"] == f"user:{controller.id}"
        started = (await act(made["id"], "start")).json()
        assert started["status"] == "in_progress" and started["allowed_actions"][0] == "complete"
        done = await act(made["id"], "complete", note="sent by post")
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["status"] == "completed" and body["completed_at"] and body["package_available"] is True
        assert body["outcome"]["note"] == "sent by post" and len(body["outcome"]["package"]["sha256"]) == 64
        assert body["allowed_actions"] == []
        log = await client.get("/v1/audit", headers=controller.headers, params={"registrant": person, "limit": 50})
        actions = {e["action"] for e in log.json()["items"]}
        assert {"request.verify", "request.start", "request.complete"} <= actions
        detail = (await client.get(f"/v1/requests/{made['id']}", headers=controller.headers)).json()
        assert [(e["action"], e["from_status"], e["to_status"]) for e in detail["events"]] == [
            ("file", None, "received"), ("verify", "received", "verified"), ("start", "verified", "in_progress"),
            ("complete", "in_progress", "completed")]
        assert detail["events"][1]["actor"] == f"user:{controller.id}"
        assert detail["events"][1]["details"]["evidence"] == {"reference": "ftn-123"}

    @pytest.mark.parametrize("status", list(ALLOWED))
    async def test_every_action_in_every_status(self, status, file, registrant, act, advance):
        """Each status allows exactly its actions; the others answer 409 listing the allowed ones."""
        person = await registrant()

        async def in_status() -> str:
            made = await file(registrant_id=person)
            if status in ("verified", "in_progress", "completed"):
                await advance(made["id"], person, until=status)
            elif status in ("rejected", "withdrawn"):
                r = await act(made["id"], "reject" if status == "rejected" else "withdraw", reason="not needed")
                assert r.status_code == 200, r.text
            return made["id"]

        request_id = await in_status()
        for action in ACTIONS:
            if action in ALLOWED[status]:
                continue
            r = await act(request_id, action, **fields_for(action, person))
            assert r.status_code == 409, (status, action, r.text)
            assert set(r.json()["allowed_actions"]) == ALLOWED[status]
        for action in sorted(ALLOWED[status]):
            r = await act(await in_status(), action, **fields_for(action, person))
            assert r.status_code == 200, (status, action, r.text)
            assert r.json()["status"] == TARGET.get(action, status)

    async def test_unknown_action_422(self, file, act):
        made = await file()
        r = await act(made["id"], "teleport")
        assert r.status_code == 422


class TestIdentity:
    async def test_no_completion_before_the_registrant_is_linked(self, file, registrant, act):
        made = await file()
        assert (await act(made["id"], "verify", method="in_person", document_type="driving_licence")).status_code == 200
        assert (await act(made["id"], "start")).status_code == 200
        refused = await act(made["id"], "complete")
        assert refused.status_code == 409
        assert "linked" in refused.json()["detail"] and "complete" in refused.json()["allowed_actions"]
        assert (await act(made["id"], "link", registrant_id=await registrant())).status_code == 200
        assert (await act(made["id"], "complete")).json()["status"] == "completed"

    async def test_no_completion_before_verification(self, file, registrant, act):
        made = await file(registrant_id=await registrant())
        r = await act(made["id"], "complete")
        assert r.status_code == 409 and "verify" in r.json()["allowed_actions"]

    async def test_an_unsigned_letter_is_verified_by_another_method(self, client, controller, file, act, policy):
        # Changed by issue 14: a hand signature cannot be demanded (EDPB Guidelines 01/2022), so an unsigned
        # letter is no longer refused when the profile says signature_required; it was a 422 before.
        made = await file(channel="letter", signed=False)
        r = await act(made["id"], "verify", method="in_person", document_type="identity_card")
        assert r.status_code == 200, r.text
        assert r.json()["verification"]["evidence"] == {"document_type": "identity_card"}
        signed = await file(channel="letter", signed=True)
        assert (await act(signed["id"], "verify", method="signed_letter")).status_code == 200

    async def test_each_method_records_proportionate_evidence(self, file, act, registrant):
        cases = [({"method": "strong_electronic_identification"}, ["body", "evidence_ref"]),
                 ({"method": "in_person"}, ["body", "document_type"]),
                 ({"method": "in_person", "document_type": "passport", "evidence_ref": "FP1234567"},
                  ["body", "evidence_ref"]),
                 ({"method": "guardian"}, ["body", "method"]),
                 ({"method": "known_contact"}, ["body", "method"]),
                 ({"method": "fingerprint"}, ["body", "verify", "method"])]
        made = await file()
        for fields, loc in cases:
            r = await act(made["id"], "verify", **fields)
            assert r.status_code == 422, (fields, r.text)
            assert loc in [e["loc"] for e in r.json()["errors"]], (fields, r.json())
        parent = await registrant()
        child = await registrant(given_name="Ella", date_of_birth="2016-05-01", guardian_ids=[parent])
        by_guardian = await file(registrant_id=child, on_behalf="guardian",
                                 authority={"name": "Matti", "basis": "custody", "registrant_id": parent})
        r = await act(by_guardian["id"], "verify", method="guardian")
        assert r.status_code == 200 and r.json()["verification"]["evidence"]["authority"]["basis"] == "custody"

    async def test_a_method_the_profile_does_not_accept_is_409(self, file, act, policy):
        await policy(identity_methods={"erasure": ["strong_electronic_identification", "in_person"]})
        made = await file("erasure")
        for fields in ({"method": "signed_letter"}, {"method": "guardian"}):
            r = await act(made["id"], "verify", **fields)
            assert r.status_code == 409, r.text
            assert r.json()["accepted_methods"] == ["strong_electronic_identification", "in_person"]
            assert "strong_electronic_identification, in_person" in r.json()["detail"]
        r = await act(made["id"], "send_confirmation", to="email")
        assert r.status_code == 409 and "known_contact" in r.json()["detail"]
        assert (await act(made["id"], "verify", method="in_person", document_type="passport")).status_code == 200

    async def test_a_profile_may_not_demand_only_paper_or_a_visit(self, client, controller, policy):
        from tests.subject_requests.conftest import profile_with
        body = profile_with(identity_methods={"access": ["signed_letter", "in_person"]})
        r = await client.put("/v1/register", headers=controller.headers, json=body)
        assert r.status_code == 422 and "known_contact or strong_electronic_identification" in r.text

    async def test_signed_letter_method_needs_a_signed_letter(self, file, act):
        made = await file(channel="email")
        r = await act(made["id"], "verify", method="signed_letter")
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "method"]

    async def test_linking_an_unknown_registrant_404(self, file, act):
        made = await file()
        r = await act(made["id"], "link", registrant_id=str(uuid.uuid4()))
        assert r.status_code == 404 and r.json()["errors"][0]["loc"] == ["body", "registrant_id"]


class TestExtension:
    async def test_once_before_the_deadline_with_a_reason(self, client, me, file, act):
        await me.travel(datetime(2027, 2, 10, tzinfo=UTC))
        made = await file(received_at="2027-01-31T09:00:00Z")
        assert made["due_at"] == "2027-03-01T21:59:59.999999Z"  # 28.2. is a Sunday
        r = await act(made["id"], "extend", reason="10,000 records to go through", person_informed=True,
                      informed_at="2027-02-09T12:00:00Z")
        assert r.status_code == 200, r.text
        body = r.json()
        # Two further months from 28.2. (the period's own last day): Wednesday 28.4., summer time.
        assert body["due_at"] == "2027-04-28T20:59:59.999999Z" and body["original_due_at"].startswith("2027-03-01")
        assert body["due_on"] == "2027-04-28"
        assert body["extension_reason"] == "10,000 records to go through"
        assert body["extension_told_at"].startswith("2027-02-09T12:00:00") and "extend" not in body["allowed_actions"]
        twice = await act(made["id"], "extend", reason="still more", person_informed=True)
        assert twice.status_code == 409 and "already" in twice.json()["detail"]
        assert "extend" not in twice.json()["allowed_actions"]

    async def test_not_after_the_deadline(self, me, file, act):
        await me.travel(datetime(2027, 3, 1, 22, 0, tzinfo=UTC))  # just after the end of Monday 1.3. in Helsinki
        made = await file(received_at="2027-01-31T09:00:00Z")
        r = await act(made["id"], "extend", reason="too late now", person_informed=True)
        assert r.status_code == 409 and "passed" in r.json()["detail"]

    async def test_reason_and_telling_the_person_are_required(self, client, controller, file, act):
        made = await file()
        cases = [({"person_informed": True}, ["body", "extend", "reason"]),
                 ({"reason": "busy", "person_informed": False}, ["body", "person_informed"]),
                 ({"reason": "busy", "person_informed": True, "informed_at": "2199-01-01T00:00:00Z"},
                  ["body", "informed_at"]),
                 ({"reason": "busy", "person_informed": True, "informed_at": "2001-01-01T00:00:00Z"},
                  ["body", "informed_at"])]
        for fields, loc in cases:
            r = await act(made["id"], "extend", **fields)
            assert r.status_code == 422, r.text
            assert loc in [e["loc"] for e in r.json()["errors"]], r.json()
        unchanged = (await client.get(f"/v1/requests/{made['id']}", headers=controller.headers)).json()
        assert unchanged["extended_at"] is None and unchanged["due_at"] == made["due_at"]


class TestFees:
    async def test_informing_of_an_extension_must_fall_in_the_first_month(self, me, file, act):
        await me.travel(datetime(2027, 3, 5, tzinfo=UTC))
        made = await file(received_at="2027-01-31T09:00:00Z")
        late = await act(made["id"], "extend", reason="complex", person_informed=True,
                         informed_at="2027-03-03T09:00:00Z")
        assert late.status_code in (409, 422)

    async def test_a_repeat_is_flagged_never_charged_for_that_alone(self, me, file, registrant, act, advance):
        # Changed by issue 14: a repeat inside the interval used to be `free: false` and chargeable as
        # `repeat_within_free_interval`; under Art. 12(5) and 15(3) (CJEU C-307/22) it is only flagged.
        person = await registrant()
        await me.travel(datetime(2027, 1, 10, tzinfo=UTC))
        first = await file(registrant_id=person)
        await advance(first["id"], person)
        await me.travel(datetime(2027, 5, 3, tzinfo=UTC))
        repeat = await file(registrant_id=person)
        assert repeat["free"] is True and repeat["previous_request_id"] == first["id"]
        assert repeat["flags"] == ["repeat_within_interval"]
        erasure = await file("erasure", registrant_id=person)
        assert erasure["flags"] == []
        await advance(repeat["id"], person, until="in_progress")
        for fee, loc in (({"amount": "15.00", "ground": "repeat_within_free_interval", "justification": "again"},
                          ["body", "complete", "fee", "ground"]),
                         ({"amount": "15.00", "ground": "further_copy"}, ["body", "complete", "fee", "justification"])):
            r = await act(repeat["id"], "complete", fee=fee)
            assert r.status_code == 422 and loc in [e["loc"] for e in r.json()["errors"]], r.text
            assert "repeat_within_free_interval" not in r.text or "further_copy" in r.text
        done = await act(repeat["id"], "complete", fee={"amount": "15.00", "ground": "further_copy",
                                                        "justification": "a second copy of the same data"})
        assert done.status_code == 200, done.text
        fee = done.json()["outcome"]["fee"]
        assert fee["ground"] == "further_copy" and fee["copy_of"] == first["id"]
        assert "tietosuojavaltuutetun" in fee["complaint"]["fi"] and done.json()["free"] is False
        await me.travel(datetime(2027, 11, 10, tzinfo=UTC))
        later = await file(registrant_id=person)
        assert later["free"] is True and later["previous_request_id"] is None and later["flags"] == []

    async def test_the_first_copy_is_always_free(self, client, controller, file, registrant, act, advance):
        person = await registrant()
        made = await file(registrant_id=person)
        await advance(made["id"], person, until="in_progress")
        r = await act(made["id"], "complete", fee={"amount": "10", "ground": "further_copy",
                                                   "justification": "we like fees"})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "fee", "ground"]
        assert "C-307/22" in r.json()["detail"]
        after = (await client.get(f"/v1/requests/{made['id']}", headers=controller.headers)).json()
        assert after["status"] == "in_progress" and after["package_available"] is False

    async def test_manifestly_unfounded_or_excessive_needs_reasons_and_names_the_right_to_complain(
            self, file, registrant, act, advance):
        person = await registrant()
        made = await file(registrant_id=person)
        await advance(made["id"], person, until="in_progress")
        r = await act(made["id"], "complete", fee={"amount": "40", "ground": "manifestly_unfounded_or_excessive",
                                                   "justification": "twelve identical requests in a week"})
        assert r.status_code == 200, r.text
        fee = r.json()["outcome"]["fee"]
        assert fee["justification"] == "twelve identical requests in a week" and "Ombudsman" in fee["complaint"]["en"]

    async def test_refusal_as_manifestly_unfounded_keeps_the_justification(self, file, act):
        made = await file()
        short = await act(made["id"], "reject", reason="", ground="manifestly_unfounded")
        assert short.status_code == 422
        r = await act(made["id"], "reject", reason="the tenth identical request this week",
                      ground="manifestly_unfounded")
        assert r.status_code == 200
        outcome = r.json()["outcome"]
        assert outcome["rejection"]["art_12_5_justification"] == "the tenth identical request this week"
        assert "tietosuojavaltuutetun" in outcome["complaint"]["fi"] and "Ombudsman" in outcome["complaint"]["en"]

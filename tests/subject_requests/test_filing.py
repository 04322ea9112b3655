"""POST /v1/requests, GET /v1/requests and GET /v1/requests/{id}: auth, deadlines, flags, bad input, isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.subject_requests.conftest import filing, profile_with


class TestFile:
    async def test_anonymous_401(self, client, policy):
        assert (await client.post("/v1/requests", json=filing())).status_code == 401

    async def test_roles_without_requests_write_403(self, client, accounts, policy):
        for role in ("auditor", "viewer", "integration"):
            r = await client.post("/v1/requests", headers=accounts[role].headers, json=filing())
            assert r.status_code == 403, role

    async def test_staff_controller_and_automation_file(self, client, accounts, policy):
        for role in ("controller", "staff", "automation"):
            r = await client.post("/v1/requests", headers=accounts[role].headers, json=filing())
            assert r.status_code == 201, (role, r.text)

    async def test_defaults_deadline_and_allowed_actions(self, file, me):
        await me.travel(datetime(2027, 1, 31, 12, 0, tzinfo=UTC))
        body = await file()
        assert body["status"] == "received"
        assert body["received_at"].startswith("2027-01-31T12:00:00")
        # One month from 31.1. ends on 28.2.2027, a Sunday: at the end of Monday 1.3. in Helsinki (1182/71 Art. 3).
        assert body["due_at"] == "2027-03-01T21:59:59.999999Z"
        assert body["due_on"] == "2027-03-01" and body["time_zone"] == "Europe/Helsinki"
        assert body["free"] is True and body["duplicate_of"] is None and body["overdue"] is False
        assert body["flags"] == [] and body["channel_advertised"] is True
        assert body["allowed_actions"] == ["verify", "send_confirmation", "link", "extend", "reject", "withdraw"]
        assert body["callback_secret"] is None

    async def test_deadline_in_a_leap_year(self, file, me):
        await me.travel(datetime(2028, 3, 1, tzinfo=UTC))
        body = await file(received_at="2028-01-31T08:00:00+02:00")
        assert body["received_at"].startswith("2028-01-31T06:00:00")
        assert body["due_at"] == "2028-02-29T21:59:59.999999Z"

    async def test_overdue_is_derived(self, client, me, file):
        await me.travel(datetime(2027, 5, 1, tzinfo=UTC))
        body = await file(received_at="2027-03-15T10:00:00Z")
        assert body["overdue"] is True
        await me.travel(datetime(2027, 4, 1, tzinfo=UTC))
        r = await client.get(f"/v1/requests/{body['id']}", headers=me.headers)
        assert r.json()["overdue"] is False

    async def test_rectification_and_objection_keep_their_content(self, file):
        rect = await file("rectification", signed=True)
        assert rect["changes"][0]["field"] == "family_name"
        objection = await file("objection", purposes=["direct_marketing", "newsletter"])
        assert objection["purposes"] == ["direct_marketing", "newsletter"]

    async def test_a_purpose_an_objection_names_cannot_be_deleted(self, client, controller, file, policy):
        await file("objection", purposes=["market_research"])
        profile = profile_with()
        profile["purposes"] = [p for p in profile["purposes"] if p["code"] != "market_research"]
        r = await client.put("/v1/register", headers=controller.headers, json=profile)
        assert r.status_code == 409 and "market_research" in r.json()["detail"]

    async def test_duplicate_is_flagged_not_refused(self, file, registrant, act):
        person = await registrant()
        first = await file(registrant_id=person)
        second = await file(registrant_id=person)
        other_type = await file("erasure", registrant_id=person)
        assert second["duplicate_of"] == first["id"]
        assert other_type["duplicate_of"] is None
        assert (await act(first["id"], "withdraw")).status_code == 200
        third = await file(registrant_id=person)
        assert third["duplicate_of"] == second["id"]

    async def test_bad_input_names_the_problem_and_stores_nothing(self, client, me, registrant, policy):
        person = await registrant()
        await me.travel(datetime(2027, 6, 1, tzinfo=UTC))
        controller = me
        cases = [
            (filing(received_at="2027-06-02T00:00:00Z"), 422, ["body", "received_at"]),
            (filing(received_at="2027-05-02T00:00:00"), 422, ["body", "received_at"]),
            (filing(channel="pigeon"), 422, ["body", "channel"]),
            (filing("rectification", changes=[]), 422, ["body", "changes"]),
            (filing("rectification", changes=[{"field": "shoe_size", "corrected_value": "42"}]), 422,
             ["body", "changes", 0, "field"]),
            (filing("objection", purposes=["astrology"]), 422, ["body", "purposes", 0]),
            (filing("objection", purposes=[]), 422, ["body", "purposes"]),
            (filing("access", changes=[{"field": "email"}]), 422, ["body", "changes"]),
            (filing("access", purposes=["newsletter"]), 422, ["body", "purposes"]),
            (filing(type="nonsense"), 422, ["body", "type"]),
            (filing(requester={}), 422, ["body", "requester", "name"]),
            (filing(registrant_id=str(uuid.uuid4())), 404, ["body", "registrant_id"]),
            (filing(surprise=1), 422, ["body", "surprise"]),
            (filing(on_behalf="guardian"), 422, ["body", "authority"]),
            (filing(authority={"name": "X", "basis": "custody"}), 422, ["body", "authority"]),
            (filing(on_behalf="representative", authority={"name": "X", "basis": "hunch"}), 422,
             ["body", "authority", "basis"]),
            (filing(on_behalf="guardian", authority={"name": "X", "basis": "custody",
                                                     "registrant_id": str(uuid.uuid4())}), 404,
             ["body", "authority", "registrant_id"]),
        ]
        for body, status, loc in cases:
            body["registrant_id"] = body.get("registrant_id", person)
            r = await client.post("/v1/requests", headers=controller.headers, json=body)
            assert r.status_code == status, (body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert loc in [e["loc"] for e in r.json()["errors"]], (loc, r.json())
        listed = await client.get("/v1/requests", headers=controller.headers, params={"registrant_id": person})
        assert listed.json()["items"] == []

    async def test_channel_the_profile_does_not_advertise_is_accepted_and_flagged(self, client, controller, policy):
        # Changed by issue 14: GDPR Art. 12(2) and the EDPB (Guidelines 01/2022) let a request come by any
        # channel; it used to be refused with 422.
        await policy(request_channels=["letter", "in_person"])
        for channel in ("email", "phone", "web_form", "api", "other"):
            r = await client.post("/v1/requests", headers=controller.headers, json=filing(channel=channel))
            assert r.status_code == 201, r.text
            assert r.json()["channel_advertised"] is False and r.json()["flags"] == ["unadvertised_channel"]
        r = await client.post("/v1/requests", headers=controller.headers, json=filing(channel="letter"))
        assert r.json()["flags"] == []
        listed = await client.get("/v1/requests", headers=controller.headers, params={"channel": "phone"})
        assert [i["channel"] for i in listed.json()["items"]] == ["phone"]

    async def test_unknown_channel_lists_the_allowed_values(self, client, controller, policy):
        r = await client.post("/v1/requests", headers=controller.headers, json=filing(channel="pigeon"))
        assert r.status_code == 422
        msg = next(e["msg"] for e in r.json()["errors"] if e["loc"] == ["body", "channel"])
        for allowed in ("email", "web_form", "phone", "letter", "in_person", "api", "other"):
            assert allowed in msg

    async def test_who_acts_and_on_what_authority(self, client, controller, registrant, policy):
        guardian = await registrant()
        child = await registrant(given_name="Ella", date_of_birth="2016-05-01", guardian_ids=[guardian])
        authority = {"name": "Matti Meikäläinen", "basis": "custody", "registrant_id": guardian,
                     "evidence": "huoltajuus väestötietojärjestelmästä"}
        r = await client.post("/v1/requests", headers=controller.headers,
                              json=filing(registrant_id=child, on_behalf="guardian", authority=authority))
        assert r.status_code == 201, r.text
        assert r.json()["authority"] == authority and r.json()["on_behalf"] == "guardian"
        attorney = {"name": "Asianajotoimisto Oy", "basis": "power_of_attorney", "evidence": "valtakirja 1.2.2026"}
        r = await client.post("/v1/requests", headers=controller.headers,
                              json=filing(on_behalf="representative", authority=attorney))
        assert r.status_code == 201 and r.json()["authority"]["basis"] == "power_of_attorney"

    async def test_ssrf_callback_urls_are_refused(self, client, controller, policy):
        for url in ("http://example.com/cb", "https://127.0.0.1/cb", "https://10.1.2.3/cb", "https://169.254.169.254/",
                    "https://[::1]/cb", "https://localhost/cb", "ftp://example.com/", "https://user:pw@example.com/",
                    "not a url"):
            r = await client.post("/v1/requests", headers=controller.headers,
                                  json=filing(status_callback_url=url))
            assert r.status_code == 422, (url, r.text)
            assert r.json()["errors"][0]["loc"] == ["body", "status_callback_url"], url

    async def test_allowlisted_callback_host_gets_a_secret(self, client, controller, policy, allow_local_callbacks):
        r = await client.post("/v1/requests", headers=controller.headers,
                              json=filing(status_callback_url="http://127.0.0.1:9/cb"))
        assert r.status_code == 201, r.text
        secret = r.json()["callback_secret"]
        assert secret and len(secret) >= 40
        again = await client.get(f"/v1/requests/{r.json()['id']}", headers=controller.headers)
        assert "callback_secret" not in again.json()

    async def test_idempotent_retry_files_once(self, client, controller, policy):
        person_filter = {"Idempotency-Key": uuid.uuid4().hex, **controller.headers}
        body = filing()
        first = await client.post("/v1/requests", headers=person_filter, json=body)
        second = await client.post("/v1/requests", headers=person_filter, json=body)
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] == second.json()["id"]


class TestList:
    async def test_anonymous_401(self, client):
        assert (await client.get("/v1/requests")).status_code == 401

    async def test_roles_without_requests_read_403(self, client, accounts):
        for role in ("viewer", "integration"):
            assert (await client.get("/v1/requests", headers=accounts[role].headers)).status_code == 403

    async def test_readers(self, client, accounts, policy):
        for role in ("controller", "staff", "auditor", "automation"):
            assert (await client.get("/v1/requests", headers=accounts[role].headers)).status_code == 200

    async def test_filters_and_pages(self, client, me, file, registrant):
        person = await registrant()
        await me.travel(datetime(2027, 9, 1, tzinfo=UTC))
        controller = me
        old = await file(registrant_id=person, received_at="2027-07-01T00:00:00Z", channel="letter", signed=True)
        new = await file("erasure", registrant_id=person, received_at="2027-08-30T00:00:00Z")

        async def ids(**params) -> list[str]:
            r = await client.get("/v1/requests", headers=controller.headers,
                                 params={"registrant_id": person, **params})
            assert r.status_code == 200, r.text
            return [i["id"] for i in r.json()["items"]]

        assert await ids() == [old["id"], new["id"]]
        assert await ids(overdue="true") == [old["id"]]
        assert await ids(overdue="false") == [new["id"]]
        assert await ids(type="erasure") == [new["id"]]
        assert await ids(channel="letter") == [old["id"]]
        assert await ids(due_before="2027-08-15T00:00:00Z") == [old["id"]]
        assert await ids(status="received") == [old["id"], new["id"]]
        assert await ids(status="completed") == []
        first = await client.get("/v1/requests", headers=controller.headers,
                                 params={"registrant_id": person, "limit": 1})
        assert [i["id"] for i in first.json()["items"]] == [old["id"]]
        rest = await client.get("/v1/requests", headers=controller.headers,
                                params={"registrant_id": person, "limit": 1, "cursor": first.json()["next_cursor"]})
        assert [i["id"] for i in rest.json()["items"]] == [new["id"]]
        bad = await client.get("/v1/requests", headers=controller.headers, params={"due_before": "2027-08-15T00:00:00"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "due_before"]

    async def test_automation_clients_see_only_their_own(self, client, controller, make_client, file):
        mine, theirs = await make_client("automation", "dsr-a"), await make_client("automation", "dsr-b")
        own = await file(account=mine)
        other = await file(account=theirs)
        staff_filed = await file()
        listed = await client.get("/v1/requests", headers=mine.headers, params={"limit": 500})
        seen = {i["id"] for i in listed.json()["items"]}
        assert own["id"] in seen and other["id"] not in seen and staff_filed["id"] not in seen
        assert (await client.get(f"/v1/requests/{own['id']}", headers=mine.headers)).status_code == 200
        for hidden in (other, staff_filed):
            assert (await client.get(f"/v1/requests/{hidden['id']}", headers=mine.headers)).status_code == 404
            r = await client.post(f"/v1/requests/{hidden['id']}/transitions", headers=mine.headers,
                                  json={"action": "withdraw"})
            assert r.status_code == 404
        assert (await client.get(f"/v1/requests/{other['id']}", headers=controller.headers)).status_code == 200


class TestGet:
    async def test_anonymous_401_and_wrong_roles_403(self, client, accounts, file):
        made = await file()
        assert (await client.get(f"/v1/requests/{made['id']}")).status_code == 401
        for role in ("viewer", "integration"):
            assert (await client.get(f"/v1/requests/{made['id']}", headers=accounts[role].headers)).status_code == 403

    async def test_unknown_404(self, client, controller):
        assert (await client.get(f"/v1/requests/{uuid.uuid4()}", headers=controller.headers)).status_code == 404

    async def test_reads_are_audited(self, client, accounts, file, registrant):
        person = await registrant()
        made = await file(registrant_id=person)
        r = await client.get(f"/v1/requests/{made['id']}", headers=accounts["auditor"].headers)
        assert r.status_code == 200
        log = await client.get("/v1/audit", headers=accounts["controller"].headers,
                               params={"registrant": person, "limit": 50})
        actions = [e["action"] for e in log.json()["items"]]
        assert "request.read" in actions and "request.create" in actions

    async def test_stats_window_uses_now(self, clock):
        clock.freeze(datetime(2027, 1, 1, tzinfo=UTC))
        assert clock.utcnow() + timedelta(days=7) == datetime(2027, 1, 8, tzinfo=UTC)

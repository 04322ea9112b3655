"""The consent ledger, its derived state, receipts, audiences and stats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ALL_ROLES
from tests.consents.conftest import GUARDIANS, by_guardian, child, grant, person

WRITERS = {"controller", "staff", "integration"}
READERS = {"controller", "staff", "auditor", "integration"}
STATS = {"controller", "staff", "auditor", "viewer"}


def states(body: dict) -> dict[tuple[str, str], str]:
    return {(s["purpose"], s["channel"]): s["state"] for s in body["states"]}


async def audience_ids(client, account, purpose: str, channel: str) -> set[str]:
    ids, cursor = set(), None
    while True:
        params = {"purpose": purpose, "channel": channel, "limit": 500, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/audience", headers=account.headers, params=params)
        assert r.status_code == 200, r.text
        ids |= {m["registrant_id"] for m in r.json()["items"]}
        cursor = r.json()["next_cursor"]
        if not cursor:
            return ids


class TestAuthMatrix:
    async def test_record(self, client, accounts, new_registrant):
        rid = await new_registrant()
        assert (await client.post(f"/v1/registrants/{rid}/consents", json=grant())).status_code == 401
        for role in ALL_ROLES:
            r = await client.post(f"/v1/registrants/{rid}/consents", headers=accounts[role].headers, json=grant())
            # The integration did not create this registrant and holds no reference to it: not visible.
            expected = 403 if role not in WRITERS else (404 if role == "integration" else 201)
            assert r.status_code == expected, (role, r.text)

    @pytest.mark.parametrize("path", ["/v1/registrants/{rid}/consents", "/v1/consents/{eid}/receipt",
                                      "/v1/audience?purpose=newsletter&channel=email"])
    async def test_reads(self, client, accounts, controller, new_registrant, path):
        rid = await new_registrant()
        eid = (await client.post(f"/v1/registrants/{rid}/consents", headers=controller.headers, json=grant())).json()["id"]
        url = path.format(rid=rid, eid=eid)
        assert (await client.get(url)).status_code == 401
        for role in ALL_ROLES:
            r = await client.get(url, headers=accounts[role].headers)
            if role not in READERS:
                assert r.status_code == 403, role
            elif role == "integration" and "audience" not in url:
                assert r.status_code == 404, role
            else:
                assert r.status_code == 200, (role, r.text)

    async def test_stats(self, client, accounts):
        assert (await client.get("/v1/stats/consents")).status_code == 401
        for role in ALL_ROLES:
            r = await client.get("/v1/stats/consents", headers=accounts[role].headers)
            assert r.status_code == (200 if role in STATS else 403), role


class TestLedger:
    async def test_grant_then_withdraw_with_the_same_fields(self, client, staff_headers, new_registrant):
        rid = await new_registrant()
        granted = await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant())
        assert granted.status_code == 201
        body = grant(action="withdraw")
        assert len(body) == len(grant())  # Art. 7(3): withdrawing is as easy as granting
        withdrawn = await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=body)
        assert withdrawn.status_code == 201
        state = (await client.get(f"/v1/registrants/{rid}/consents", headers=staff_headers)).json()
        assert states(state)[("newsletter", "email")] == "withdrawn"
        decided = next(s for s in state["states"] if s["purpose"] == "newsletter")
        assert decided["event_id"] == withdrawn.json()["id"]
        assert states(state)[("direct_marketing", "sms")] == "none"

    async def test_history_returns_the_whole_ledger(self, client, staff_headers, new_registrant):
        rid = await new_registrant()
        for action in ("grant", "withdraw", "grant"):
            await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant(action=action))
        r = await client.get(f"/v1/registrants/{rid}/consents", headers=staff_headers, params={"history": "true"})
        assert [e["action"] for e in r.json()["history"]] == ["grant", "withdraw", "grant"]
        assert states(r.json())[("newsletter", "email")] == "granted"

    async def test_no_channel_covers_every_channel_of_the_purpose(self, client, staff_headers, new_registrant):
        rid = await new_registrant()
        await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers,
                          json=grant("waitlist", channel=None))
        s = states((await client.get(f"/v1/registrants/{rid}/consents", headers=staff_headers)).json())
        assert s[("waitlist", "email")] == s[("waitlist", "sms")] == "granted"

    async def test_backdated_evidence_orders_by_when_it_was_said(self, client, staff_headers, new_registrant):
        rid = await new_registrant()
        now = datetime.now(UTC)
        await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers,
                          json=grant(action="withdraw", evidence={"collected_at": now.isoformat()}))
        # A letter granting consent a week ago, typed in afterwards, does not undo today's withdrawal.
        await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers,
                          json=grant(evidence={"collected_at": (now - timedelta(days=7)).isoformat()}))
        s = states((await client.get(f"/v1/registrants/{rid}/consents", headers=staff_headers)).json())
        assert s[("newsletter", "email")] == "withdrawn"

    async def test_guardian_gives_consent_for_a_child(self, client, staff_headers, new_registrant):
        rid = await new_registrant(child())
        unnamed = await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers,
                                    json=grant("waitlist", "sms"))
        assert unnamed.status_code == 422, unnamed.text  # nothing is inferred: the guardian must be named
        assert unnamed.json()["errors"][0]["loc"] == ["body", "evidence", "guardian_id"]
        r = await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers,
                              json=grant("waitlist", "sms", evidence=by_guardian(rid)))
        assert r.status_code == 201, r.text
        assert r.json()["given_by"] == "guardian"
        assert r.json()["evidence"]["guardian_id"] == GUARDIANS[rid]
        assert "guardian" in r.json()["receipt"]["collectionMethod"]
        # The child's own withdrawal is always accepted and takes effect at once (Art. 7(3)).
        own = grant("waitlist", "sms", action="withdraw", evidence={"given_by": "self"})
        accepted = await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=own)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["given_by"] == "self"
        state = (await client.get(f"/v1/registrants/{rid}/consents", headers=staff_headers)).json()
        assert {(s["purpose"], s["channel"]): s["state"] for s in state["states"]}[("waitlist", "sms")] == "withdrawn"

    async def test_adult_records_self(self, client, staff_headers, new_registrant):
        rid = await new_registrant()
        r = await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant())
        assert r.json()["given_by"] == "self"
        assert r.json()["recorded_by"].startswith("user:")


class TestReceipts:
    async def test_receipt_is_kantara_shaped_and_given_again(self, client, staff_headers, new_registrant):
        rid = await new_registrant()
        made = (await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant())).json()
        receipt = made["receipt"]
        assert receipt["version"] == "KI-CR-v1.1.0"
        assert receipt["jurisdiction"] == "FI"
        assert receipt["consentReceiptID"] == made["id"]
        assert receipt["piiPrincipalId"] == rid
        assert receipt["piiControllers"][0]["piiController"] == "Selfluencer Oy"
        assert receipt["policyUrl"].endswith("/v1/register/statement")
        purpose = receipt["services"][0]["purposes"][0]
        assert purpose["consentType"] == "EXPLICIT"
        assert purpose["piiCategory"]
        assert {"termination", "thirdPartyDisclosure", "purposeCategory"} <= purpose.keys()
        again = await client.get(f"/v1/consents/{made['id']}/receipt", headers=staff_headers)
        assert again.json() == receipt

    async def test_unknown_event_is_404(self, client, staff_headers):
        assert (await client.get(f"/v1/consents/{uuid.uuid4()}/receipt", headers=staff_headers)).status_code == 404


class TestBadInput:
    @pytest.mark.parametrize(("body", "loc"), [
        (grant(purpose="no_such_purpose"), ["body", "purpose"]),
        (grant(channel="fax"), ["body", "channel"]),
        (grant(channel="sms"), ["body", "channel"]),  # the newsletter goes by email only
        # Legitimate interest and not direct marketing: needs no consent (direct marketing takes one, see test_marketing).
        (grant(purpose="market_research"), ["body", "action"]),
        (grant(purpose="courses", action="object", channel="email"), ["body", "action"]),  # not objectable
        (grant(evidence={"collected_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}),
         ["body", "evidence", "collected_at"]),
        ({k: v for k, v in grant().items() if k != "source"}, ["body", "source"]),
        (grant(status="granted"), ["body", "status"]),
        (grant(evidence={"client_addr": "not-an-ip"}), ["body", "evidence", "client_addr"]),
    ])
    async def test_422_naming_the_field(self, client, staff_headers, new_registrant, body, loc):
        rid = await new_registrant()
        r = await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"][: len(loc)] == loc
        history = await client.get(f"/v1/registrants/{rid}/consents", headers=staff_headers, params={"history": True})
        assert history.json()["history"] == []  # nothing written

    async def test_unknown_and_erased_registrants_are_404(self, client, staff_headers, new_registrant, set_status):
        assert (await client.post(f"/v1/registrants/{uuid.uuid4()}/consents", headers=staff_headers,
                                  json=grant())).status_code == 404
        rid = await new_registrant()
        await set_status(rid, "erased")
        assert (await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers,
                                  json=grant())).status_code == 404
        assert (await client.get(f"/v1/registrants/{rid}/consents", headers=staff_headers)).status_code == 404


class TestAudience:
    async def test_consent_purpose_lists_current_grants_only(self, client, staff_headers, staff, new_registrant):
        yes, no, withdrawn = await new_registrant(), await new_registrant(), await new_registrant()
        await client.post(f"/v1/registrants/{yes}/consents", headers=staff_headers, json=grant())
        await client.post(f"/v1/registrants/{withdrawn}/consents", headers=staff_headers, json=grant())
        await client.post(f"/v1/registrants/{withdrawn}/consents", headers=staff_headers, json=grant(action="withdraw"))
        ids = await audience_ids(client, staff, "newsletter", "email")
        assert yes in ids
        assert no not in ids and withdrawn not in ids

    async def test_legitimate_interest_lists_everyone_who_has_not_objected(self, client, staff_headers, staff,
                                                                           new_registrant):
        quiet, objector = await new_registrant(), await new_registrant()
        await client.post(f"/v1/registrants/{objector}/consents", headers=staff_headers,
                          json=grant("market_research", "email", action="object"))
        email = await audience_ids(client, staff, "market_research", "email")
        phone = await audience_ids(client, staff, "market_research", "phone")
        assert quiet in email and objector not in email
        assert objector in phone  # the objection named only email

    async def test_direct_marketing_objection_is_absolute(self, client, staff_headers, staff, new_registrant):
        rid = await new_registrant()
        await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant())  # newsletter
        assert rid in await audience_ids(client, staff, "newsletter", "email")
        r = await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers,
                              json=grant("direct_marketing", "sms", action="object", source="letter"))
        assert r.status_code == 201
        for purpose, channel in [("newsletter", "email"), ("direct_marketing", "email"), ("direct_marketing", "post"),
                                 ("direct_marketing", "sms")]:
            assert rid not in await audience_ids(client, staff, purpose, channel), (purpose, channel)
        s = states((await client.get(f"/v1/registrants/{rid}/consents", headers=staff_headers)).json())
        assert s[("newsletter", "email")] == s[("direct_marketing", "phone")] == "objected"
        # Not direct marketing: still reachable for surveys.
        assert rid in await audience_ids(client, staff, "surveys", "email")

    async def test_only_the_contact_the_channel_needs(self, client, staff_headers, staff, new_registrant):
        rid = await new_registrant(person(phone="040 581 2799"))
        await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant("waitlist", "sms"))
        r = await client.get("/v1/audience", headers=staff.headers, params={"purpose": "waitlist", "channel": "sms"})
        member = next(m for m in r.json()["items"] if m["registrant_id"] == rid)
        assert member["phone"] == "+358405812799"
        assert member["email"] is None and member["address"] is None

    async def test_child_is_reached_through_the_guardian(self, client, staff_headers, staff, new_registrant):
        rid = await new_registrant(child())
        await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers,
                          json=grant("waitlist", "email", evidence=by_guardian(rid)))
        r = await client.get("/v1/audience", headers=staff.headers, params={"purpose": "waitlist", "channel": "email"})
        member = next(m for m in r.json()["items"] if m["registrant_id"] == rid)
        assert member["email"].startswith("hanna.")
        # The guardian's new address is where the child is reached from then on.
        new = f"hanna.uusi.{uuid.uuid4().hex[:8]}@example.com"
        changed = await client.patch(f"/v1/registrants/{GUARDIANS[rid]}", headers=staff_headers, json={"email": new})
        assert changed.status_code == 200, changed.text
        r = await client.get("/v1/audience", headers=staff.headers, params={"purpose": "waitlist", "channel": "email"})
        assert next(m for m in r.json()["items"] if m["registrant_id"] == rid)["email"] == new

    async def test_restricted_and_erased_never_appear(self, client, staff_headers, staff, new_registrant, set_status):
        restricted, erased = await new_registrant(), await new_registrant()
        for rid in (restricted, erased):
            await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant())
        await set_status(restricted, "restricted")
        await set_status(erased, "erased")
        ids = await audience_ids(client, staff, "newsletter", "email") | await audience_ids(
            client, staff, "market_research", "email")
        assert restricted not in ids and erased not in ids

    async def test_csv_neutralises_a_cell_that_would_start_a_formula(self, client, staff_headers, staff,
                                                                      new_registrant):
        email = f"=cmd.{uuid.uuid4().hex[:8]}@example.com"
        rid = await new_registrant(person(email=email))
        await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant())
        cursor, rows = None, []
        while True:
            r = await client.get("/v1/audience", headers=staff.headers, params={
                "purpose": "newsletter", "channel": "email", "limit": 5000, "format": "csv",
                **({"cursor": cursor} if cursor else {})})
            rows += [line.split(",") for line in r.text.strip().splitlines()[1:]]
            cursor = r.headers.get("x-next-cursor")
            if not cursor:
                break
        assert [row[2] for row in rows if row[0] == rid] == ["'" + email]

    async def test_pages_and_csv(self, client, staff_headers, staff, new_registrant):
        for _ in range(3):
            rid = await new_registrant()
            await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant())
        first = await client.get("/v1/audience", headers=staff.headers,
                                 params={"purpose": "newsletter", "channel": "email", "limit": 2})
        assert len(first.json()["items"]) == 2 and first.json()["next_cursor"]
        csv = await client.get("/v1/audience", headers=staff.headers,
                               params={"purpose": "newsletter", "channel": "email", "limit": 2, "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.strip().splitlines()
        assert lines[0] == ("registrant_id,language,email,phone,basis,contact_person,optout_url,list_unsubscribe,"
                            "list_unsubscribe_post") and len(lines) == 3
        assert csv.headers["x-next-cursor"] == first.json()["next_cursor"]

    @pytest.mark.parametrize(("params", "loc"), [
        ({"purpose": "nope", "channel": "email"}, ["query", "purpose"]),
        ({"purpose": "newsletter", "channel": "sms"}, ["query", "channel"]),
        ({"purpose": "newsletter", "channel": "fax"}, ["query", "channel"]),
        ({"channel": "email"}, ["query", "purpose"]),
    ])
    async def test_bad_query_is_422(self, client, staff, params, loc, register_profile):
        r = await client.get("/v1/audience", headers=staff.headers, params=params)
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == loc

    async def test_each_page_is_audited_with_purpose_channel_and_count(self, client, staff, controller):
        r = await client.get("/v1/audience", headers={**staff.headers, "X-Request-Id": "aud-" + uuid.uuid4().hex},
                             params={"purpose": "newsletter", "channel": "email", "limit": 3})
        entries = (await client.get("/v1/audit", headers=controller.headers,
                                    params={"request_id": r.headers["x-request-id"]})).json()["items"]
        assert len(entries) == 1
        assert entries[0]["action"] == "audience.read"
        assert entries[0]["details"] == {"purpose": "newsletter", "channel": "email", "count": len(r.json()["items"])}


class TestIntegrationIsolation:
    async def test_integration_sees_and_writes_only_its_own(self, client, make_client, new_registrant, staff_headers):
        booking, webshop = await make_client("integration", "booking"), await make_client("integration", "webshop")
        own = await new_registrant(person(external_refs=[{"system": "booking", "id": uuid.uuid4().hex[:8]}]))
        other = await new_registrant(person(external_refs=[{"system": "webshop", "id": uuid.uuid4().hex[:8]}]))
        for rid in (own, other):
            await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant())
        assert (await client.post(f"/v1/registrants/{own}/consents", headers=booking.headers,
                                  json=grant(action="withdraw"))).status_code == 201
        assert (await client.post(f"/v1/registrants/{other}/consents", headers=booking.headers,
                                  json=grant())).status_code == 404
        assert (await client.get(f"/v1/registrants/{other}/consents", headers=booking.headers)).status_code == 404
        webshop_ids = await audience_ids(client, webshop, "newsletter", "email")
        assert other in webshop_ids and own not in webshop_ids
        booking_ids = await audience_ids(client, booking, "market_research", "email")
        assert own in booking_ids and other not in booking_ids


class TestStats:
    async def test_counts_without_personal_data(self, client, accounts, staff_headers, new_registrant):
        rid = await new_registrant()
        await client.post(f"/v1/registrants/{rid}/consents", headers=staff_headers, json=grant("waitlist", "sms"))
        r = await client.get("/v1/stats/consents", headers=accounts["viewer"].headers)
        row = next(c for c in r.json()["counts"] if (c["purpose"], c["channel"], c["state"]) == ("waitlist", "sms", "granted"))
        assert row["registrants"] >= 1
        assert set(row) == {"purpose", "channel", "state", "registrants"}

"""Property: whatever people, ledgers and sales exist, `/v1/audience` lists exactly those `rules.decide` admits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.consents.rules import PurposeRule, Subject, decide
from app.consents.state import Action, LedgerEvent, State, derive
from app.core import clock
from tests.consents.conftest import person

CHANNELS = {"newsletter": ["email"], "direct_marketing": ["email", "sms", "phone", "post"]}
MARKETING = frozenset({"newsletter", "direct_marketing", "profiling"})
RULES = {("direct_marketing", c): PurposeRule(c, "legitimate_interest", True, True) for c in ("email", "sms", "post")}
RULES[("newsletter", "email")] = PurposeRule("email", "consent", True, False)

EVENT = st.tuples(st.sampled_from(["newsletter", "direct_marketing"]), st.sampled_from(["email", "sms", "post", None]),
                  st.sampled_from(["grant", "withdraw", "object"]), st.sampled_from(["self", "guardian"]))
MEMBER = st.fixed_dictionaries({
    "kind": st.sampled_from(["person", "person", "organisation"]),
    "age": st.sampled_from(["adult", "child", "unknown"]),
    "restricted": st.booleans(),
    "email": st.booleans(),
    "address": st.booleans(),
    "sale": st.sampled_from([None, "offered", "not_offered", "lesson"]),
    "events": st.lists(EVENT, max_size=4),
})


def _body(member: dict, tag: str) -> dict:
    """The registrant as the API takes it."""
    today = date.today()
    email = f"p.{tag}.{uuid.uuid4().hex[:8]}@example.com" if member["email"] else None
    # Each its own address: an address shared by two registrants is listed once (tested in test_marketing).
    address = {"street": f"Katu {uuid.uuid4().hex[:8]}", "postal_code": "00100", "city": "Helsinki"} \
        if member["address"] else None
    if member["kind"] == "organisation":
        return {"kind": "organisation", "name": f"Oy {tag}", "business_id": "2686898-3", "email": email,
                "address": address, "language": "fi",
                "contact_persons": [{"name": "Kalle", "email": f"k.{tag}.{uuid.uuid4().hex[:8]}@example.com"}]}
    if member["age"] == "child":
        return person(email=None, address=address, date_of_birth=date(today.year - 9, 3, 1).isoformat(),
                      _guardian=person(given_name="Hanna", family_name="Huoltaja",
                                       email=email or f"g.{tag}.{uuid.uuid4().hex[:8]}@example.com"))
    born = date(today.year - 30, 3, 1).isoformat() if member["age"] == "adult" else None
    return person(email=email, address=address, date_of_birth=born)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(population=st.lists(MEMBER, min_size=1, max_size=5))
async def test_audience_is_exactly_what_the_engine_admits(client, controller, register_profile, set_status, population):
    tag, base = uuid.uuid4().hex[:8], datetime.now(UTC) - timedelta(days=30)
    subjects: dict[str, tuple[dict, dict[tuple[str, str], tuple[State, str | None]], bool, dict]] = {}
    for member in population:
        body = _body(member, tag)
        guardian = body.pop("_guardian", None)
        if guardian is not None:
            made = await client.post("/v1/registrants", headers=controller.headers, json=guardian)
            assert made.status_code == 201, made.text
            body["guardian_ids"] = [made.json()["id"]]
            body["guardian"] = guardian
        r = await client.post("/v1/registrants", headers=controller.headers,
                              json={k: v for k, v in body.items() if k != "guardian"})
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        if member["sale"]:
            record = {"type": "lesson" if member["sale"] == "lesson" else "order", "source": "webshop",
                      "occurred_at": base.isoformat(), "opt_out_offered": member["sale"] != "not_offered"}
            assert (await client.post(f"/v1/registrants/{rid}/records", headers=controller.headers,
                                      json=record)).status_code == 201
        ledger, givers = [], {}
        for seq, (purpose, channel, action, given_by) in enumerate(member["events"]):
            if channel and channel not in CHANNELS[purpose]:
                continue
            at = base + timedelta(minutes=seq)
            evidence = {"collected_at": at.isoformat(), "given_by": given_by}
            if given_by == "guardian":
                evidence["guardian_id"] = body.get("guardian_ids", [str(uuid.uuid4())])[0]
            event = {"action": action, "purpose": purpose, "source": "staff", "evidence": evidence}
            if channel:
                event["channel"] = channel
            r = await client.post(f"/v1/registrants/{rid}/consents", headers=controller.headers, json=event)
            if member["kind"] == "person" and member["age"] == "child" and given_by == "self" and action == "grant":
                assert r.status_code == 422  # only a linked guardian consents for a child (Art. 8, 1050/2018 § 5)
                continue
            if given_by == "guardian" and not (member["kind"] == "person" and member["age"] == "child"):
                assert r.status_code == 422  # a guardian acts only for a child linked to them
                continue
            assert r.status_code == 201, r.text
            ledger.append(LedgerEvent(uuid.UUID(r.json()["id"]), seq, purpose, channel, Action(action), at))
            givers[uuid.UUID(r.json()["id"])] = r.json()["given_by"]
        decided = derive(ledger, channels=CHANNELS, direct_marketing=MARKETING)
        states = {key: (d.state, givers[d.event_id]) for key, d in decided.items()}
        if member["restricted"]:
            await set_status(rid, "restricted")
        subjects[rid] = (member, states, member["sale"] in ("offered",), body)

    today = clock.utcnow().date()
    for (purpose, channel), rule in RULES.items():
        r = await client.get("/v1/audience", headers=controller.headers,
                             params={"purpose": purpose, "channel": channel, "limit": 5000})
        assert r.status_code == 200, r.text
        assert r.json()["next_cursor"] is None
        listed = {m["registrant_id"] for m in r.json()["items"]} & set(subjects)
        expected = set()
        for rid, (member, states, sale, body) in subjects.items():
            state, given_by = states.get((purpose, channel), (State.none, None))
            contact = body.get("address") if channel == "post" else (
                body.get("email") or (body.get("guardian") or {}).get("email")
                or next((c.get("email") for c in body.get("contact_persons", [])), None))
            if channel == "sms":
                contact = body.get("phone")
            born = body.get("date_of_birth")
            subject = Subject(kind=member["kind"], status="restricted" if member["restricted"] else "active",
                              date_of_birth=date.fromisoformat(born) if born else None, state=state,
                              given_by=given_by, sale_with_opt_out=sale, has_contact=contact is not None)
            if decide(subject, rule, today=today, guardian_age=13).admitted:
                expected.add(rid)
        assert listed == expected, (purpose, channel)
        # Paged two at a time (each page's reads resume in chunks past the last row read): the same people, and
        # no address twice across pages.
        paged, addresses, cursor = [], [], None
        while True:
            params = {"purpose": purpose, "channel": channel, "limit": 2, **({"cursor": cursor} if cursor else {})}
            body = (await client.get("/v1/audience", headers=controller.headers, params=params)).json()
            paged += [m["registrant_id"] for m in body["items"]]
            addresses += [m["email"] or m["phone"] or json.dumps(m["address"]) for m in body["items"]]
            if not (cursor := body["next_cursor"]):
                break
        assert set(paged) & set(subjects) == expected and len(addresses) == len(set(addresses)), (purpose, channel)

"""Property: whatever events arrive, the stored state equals a replay of the ledger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.consents import service as consent_service
from app.consents.state import Action, LedgerEvent, State, derive
from tests.consents.conftest import person

# (purpose, action, channel) choices valid under the combined test profile.
EVENTS = st.one_of(
    st.tuples(st.just("newsletter"), st.sampled_from(["grant", "withdraw", "object"]), st.sampled_from(["email", None])),
    st.tuples(st.just("waitlist"), st.sampled_from(["grant", "withdraw", "object"]), st.sampled_from(["email", "sms", None])),
    st.tuples(st.just("direct_marketing"), st.just("object"), st.sampled_from(["email", "sms", "phone", "post", None])),
    st.tuples(st.just("market_research"), st.just("object"), st.sampled_from(["email", "phone", None])),
)
SEQUENCES = st.lists(st.tuples(EVENTS, st.integers(min_value=0, max_value=5)), min_size=1, max_size=8)

CHANNELS = {"newsletter": ["email"], "waitlist": ["email", "sms"], "direct_marketing": ["email", "sms", "phone", "post"],
            "market_research": ["email", "phone"], "profiling": []}
MARKETING = {"direct_marketing", "newsletter", "profiling"}


def model(events: list[tuple[str, str, str | None, datetime]]) -> dict[tuple[str, str], str]:
    """An independent, deliberately naive reading of the rules, to check the service against."""
    result: dict[tuple[str, str], str] = {}
    ordered = sorted(enumerate(events), key=lambda pair: (pair[1][3], pair[0]))
    for _, (purpose, action, channel, _at) in ordered:
        state = {"grant": "granted", "withdraw": "withdrawn", "object": "objected"}[action]
        if action == "object" and purpose in MARKETING:
            for p in MARKETING:
                for c in CHANNELS[p]:
                    result[(p, c)] = state
        elif channel is None:
            for c in CHANNELS[purpose]:
                result[(purpose, c)] = state
        else:
            result[(purpose, channel)] = state
    return result


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=SEQUENCES)
async def test_stored_state_matches_the_ledger(app, client, controller, register_profile, sequence):
    r = await client.post("/v1/registrants", headers=controller.headers, json=person())
    rid = r.json()["id"]
    base = datetime.now(UTC) - timedelta(days=10)
    sent = []
    for (purpose, action, channel), days_ago in sequence:
        at = base + timedelta(days=5 - days_ago)
        body = {"action": action, "purpose": purpose, "source": "staff",
                "evidence": {"collected_at": at.isoformat()}}
        if channel:
            body["channel"] = channel
        assert (await client.post(f"/v1/registrants/{rid}/consents", headers=controller.headers, json=body)).status_code == 201
        sent.append((purpose, action, channel, at))

    stored = {(s["purpose"], s["channel"]): s["state"] for s in
              (await client.get(f"/v1/registrants/{rid}/consents", headers=controller.headers)).json()["states"]}
    expected = model(sent)
    for key, state in stored.items():
        assert state == expected.get(key, "none"), key
    # And the table kept for speed equals a full recomputation from the ledger.
    async with app.state.db.sessionmaker() as session:
        recomputed = await consent_service.derived_state(session, registrant_id=uuid.UUID(rid))
    assert {k: d.state.value for k, d in recomputed.items()} == {k: v for k, v in stored.items() if v != "none"}


def test_derive_is_order_independent_of_arrival_for_distinct_times():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    grant = LedgerEvent(uuid.uuid4(), 0, "newsletter", "email", Action.grant, t + timedelta(days=1))
    withdraw = LedgerEvent(uuid.uuid4(), 1, "newsletter", "email", Action.withdraw, t)
    result = derive([grant, withdraw], channels=CHANNELS)
    assert result[("newsletter", "email")].state is State.granted
    assert result[("newsletter", "email")].event_id == grant.id

"""Retention of relationship records: after the customer relationship ends, vouchers by the Accounting Act."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.register import retention
from tests.registrants.conftest import person


def _at(years_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=365.25 * years_ago)).isoformat()


async def _record(client, headers, registrant_id: str, record_type: str, years_ago: float) -> str:
    body = {"type": record_type, "occurred_at": _at(years_ago), "external_id": uuid.uuid4().hex, "data": {"n": 1}}
    r = await client.post(f"/v1/registrants/{registrant_id}/records", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _ids(client, headers, registrant_id: str) -> set[str]:
    r = await client.get(f"/v1/registrants/{registrant_id}/records", headers=headers, params={"limit": 100})
    return {item["id"] for item in r.json()["items"]}


class TestRecordRetention:
    async def test_records_go_when_their_period_is_over_and_not_before(self, app, client, controller,
                                                                       register_profile):
        h = controller.headers
        gone = (await client.post("/v1/registrants", headers=h, json=person())).json()["id"]
        ongoing = (await client.post("/v1/registrants", headers=h, json=person())).json()["id"]
        old_order = await _record(client, h, gone, "order", 4)         # relationship ended 4 years ago
        old_invoice = await _record(client, h, gone, "invoice", 8)     # beyond 6 years from its year's end
        kept_invoice = await _record(client, h, gone, "invoice", 4)    # the Accounting Act still needs it
        history = await _record(client, h, ongoing, "lesson", 4)       # same age, but the customer is active
        recent = await _record(client, h, ongoing, "lesson", 0.1)

        async with app.state.db.sessionmaker() as session:
            preview = {(l.category, l.table): l.count for l in await retention.purge(session, dry_run=True,
                                                                                    rules=app.state.wiring.retention_rules)}
            await session.commit()
        assert preview[("customer_relationship", "relationship_record")] >= 1
        async with app.state.db.sessionmaker() as session:
            await retention.purge(session, dry_run=False, rules=app.state.wiring.retention_rules)
            await session.commit()

        assert await _ids(client, h, gone) == {kept_invoice}
        assert await _ids(client, h, ongoing) == {history, recent}
        assert old_order and old_invoice  # both were there before the purge, and are gone now

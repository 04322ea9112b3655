"""The /v1/registrants/{id}/records endpoints."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.registrants.models import RelationshipRecord
from tests.registrants.conftest import ext_id

pytestmark = pytest.mark.asyncio


def record(**overrides):
    """A valid order record."""
    body = {"type": "order", "occurred_at": "2026-11-01T10:00:00+02:00", "external_id": ext_id(),
            "data": {"sum": "49.00", "product": "Laulutunti"}}
    body.update(overrides)
    return body


async def _records(app, registrant_id: str) -> int:
    async with app.state.db.sessionmaker() as session:
        stmt = select(func.count()).select_from(RelationshipRecord).where(
            RelationshipRecord.registrant_id == uuid.UUID(registrant_id))
        return (await session.execute(stmt)).scalar_one()


class TestAddRecord:
    async def test_auth_matrix(self, client, make_user, make_client, create):
        created = await create(await make_user("staff"))
        url = f"/v1/registrants/{created['id']}/records"
        assert (await client.post(url, json=record())).status_code == 401
        for account in (await make_user("viewer"), await make_user("auditor"), await make_client("automation")):
            assert (await client.post(url, headers=account.headers, json=record())).status_code == 403
        assert (await client.post(url, headers=(await make_client("integration")).headers,
                                  json=record())).status_code == 404

    async def test_defaults_and_idempotency_per_source(self, client, make_client, create, app):
        booking = await make_client("integration", "booking")
        created = await create(booking)
        url = f"/v1/registrants/{created['id']}/records"
        body = record(type="invoice")
        first = await client.post(url, headers=booking.headers, json=body)
        assert first.status_code == 201, first.text
        assert first.json()["source"] == "booking" and first.json()["data_category"] == "accounting_vouchers"
        again = await client.post(url, headers=booking.headers, json={**body, "data": {"changed": True}})
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert await _records(app, created["id"]) == 1
        async with app.state.db.sessionmaker() as session:
            entries = (await session.execute(select(AuditEntry).where(AuditEntry.resource_id == first.json()["id"]))).scalars().all()
        assert {e.action for e in entries} == {"record.create", "record.replay"}

    async def test_data_over_16_kib_is_413(self, client, make_user, create, app):
        staff = await make_user("staff")
        created = await create(staff)
        r = await client.post(f"/v1/registrants/{created['id']}/records", headers=staff.headers,
                              json=record(data={"text": "x" * 17000}))
        assert r.status_code == 413, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "data"]
        assert await _records(app, created["id"]) == 0

    async def test_integration_cannot_write_for_another_source(self, client, make_client, create, app):
        booking = await make_client("integration", "booking")
        created = await create(booking)
        r = await client.post(f"/v1/registrants/{created['id']}/records", headers=booking.headers,
                              json=record(source="webshop"))
        assert r.status_code == 403
        assert r.json()["errors"][0]["loc"] == ["body", "source"]
        assert await _records(app, created["id"]) == 0

    @pytest.mark.parametrize("body", [record(type="purchase"), record(occurred_at="yesterday"), record(id="x"),
                                      record(data="text")])
    async def test_bad_input(self, client, make_user, create, body):
        staff = await make_user("staff")
        created = await create(staff)
        r = await client.post(f"/v1/registrants/{created['id']}/records", headers=staff.headers, json=body)
        assert r.status_code == 422, r.text


class TestListRecords:
    async def test_auth_matrix(self, client, make_user, make_client, create):
        created = await create(await make_user("staff"))
        url = f"/v1/registrants/{created['id']}/records"
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers=(await make_user("viewer")).headers)).status_code == 403
        assert (await client.get(url, headers=(await make_client("integration", "webshop")).headers)).status_code == 404
        assert (await client.get(url, headers=(await make_user("auditor")).headers)).status_code == 200

    async def test_filters_and_pages(self, client, make_user, create):
        staff = await make_user("staff")
        created = await create(staff)
        url = f"/v1/registrants/{created['id']}/records"
        for day, kind in ((1, "lesson"), (2, "lesson"), (3, "feedback")):
            r = await client.post(url, headers=staff.headers,
                                  json=record(type=kind, occurred_at=f"2026-10-0{day}T12:00:00Z"))
            assert r.status_code == 201, r.text
        r = await client.get(url, headers=staff.headers, params={"type": "lesson", "limit": 1})
        page = r.json()
        assert [i["occurred_at"][:10] for i in page["items"]] == ["2026-10-02"]
        r = await client.get(url, headers=staff.headers, params={"type": "lesson", "cursor": page["next_cursor"]})
        assert [i["occurred_at"][:10] for i in r.json()["items"]] == ["2026-10-01"]
        r = await client.get(url, headers=staff.headers, params={"from": "2026-10-02T00:00:00Z"})
        assert [i["type"] for i in r.json()["items"]] == ["feedback", "lesson"]


class TestRecordIdempotencyKey:
    async def test_keyed_retry_replays_without_a_second_row(self, client, make_user, create, app):
        staff = await make_user("staff")
        created = await create(staff)
        headers = {**staff.headers, "Idempotency-Key": ext_id()}
        body = record(external_id=None)
        url = f"/v1/registrants/{created['id']}/records"
        first = await client.post(url, headers=headers, json=body)
        again = await client.post(url, headers=headers, json=body)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert await _records(app, created["id"]) == 1

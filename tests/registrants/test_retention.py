"""Retention of the registrants domain, by time travel: contact details and records from the end of the customer
relationship, the Accounting Act's vouchers and books, the other record categories; holds keep what they keep."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import pytest
from sqlalchemy import func, select, update

from app.register import retention
from app.register.schemas import RegisterProfile
from app.registrants.models import Registrant, RegistrantStatus, RelationshipRecord
from tests.register.conftest import current, example, later, noon, purge_at  # noqa: F401 - `current` is a fixture
from tests.registrants.conftest import person

REC = RelationshipRecord.__table__


async def _person(client, headers) -> str:
    r = await client.post("/v1/registrants", headers=headers, json=person())
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _record(client, headers, rid: str, occurred: datetime, *, ends: datetime | None = None,
                  record_type: str = "order", category: str | None = None) -> str:
    body = {"type": record_type, "occurred_at": occurred.isoformat(), "external_id": uuid.uuid4().hex}
    if ends:
        body["ends_at"] = ends.isoformat()
    if category:
        body["data_category"] = category
    r = await client.post(f"/v1/registrants/{rid}/records", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _records(app, rid: str) -> int:
    async with app.state.db.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(REC).where(
            REC.c.registrant_id == uuid.UUID(rid)))).scalar_one()


async def _registrant(app, rid: str) -> Registrant:
    async with app.state.db.sessionmaker() as session:
        return await session.get(Registrant, uuid.UUID(rid), populate_existing=True)


class TestCustomerRelationship:
    async def test_kept_three_years_from_the_end_of_the_last_contract(self, app, client, controller,
                                                                       register_profile, clock):
        h = controller.headers
        ended, restricted, requested = [await _person(client, h) for _ in range(3)]
        contract_end = noon(date(2027, 6, 15))
        await _record(client, h, ended, noon(date(2026, 6, 15)), ends=contract_end)
        for rid in (restricted, requested):
            await _record(client, h, rid, noon(date(2026, 6, 15)))
        filed = await client.post("/v1/requests", headers=h, json={
            "type": "access", "registrant_id": requested, "requester": {"name": "Maija", "email": "m@example.com"},
            "channel": "email"})
        assert filed.status_code == 201, filed.text
        async with app.state.db.sessionmaker() as session:
            await session.execute(update(Registrant).where(Registrant.id == uuid.UUID(restricted))
                                  .values(status=RegistrantStatus.restricted))
            await session.commit()

        await purge_at(app, later(contract_end, "P3Y", -1))  # the contract's end + 3 years - 1 day
        assert (await _registrant(app, ended)).email is not None and await _records(app, ended) == 1
        after = await purge_at(app, later(contract_end, "P3Y", 1))
        gone = await _registrant(app, ended)
        assert gone.email is None and gone.family_name is None and gone.status == RegistrantStatus.erased
        assert await _records(app, ended) == 0
        for rid in (restricted, requested):  # Art. 18 and an open request keep everything
            assert (await _registrant(app, rid)).email is not None and await _records(app, rid) == 1
        for category in ("contact_details", "customer_relationship"):  # the records held say so too
            skipped = after[category].skipped
            assert skipped["restriction (GDPR Art. 18)"] >= 1 and skipped["an open data-subject request"] >= 1
        again = await purge_at(app, later(contract_end, "P3Y", 1))
        assert again["contact_details"].acted == 0 and again["customer_relationship"].acted == 0

    async def test_a_later_record_of_any_category_keeps_the_relationship_running(self, app, client, controller,
                                                                                  register_profile, clock):
        h = controller.headers
        rid = await _person(client, h)
        await _record(client, h, rid, noon(date(2026, 6, 15)))
        await _record(client, h, rid, noon(date(2028, 6, 15)), record_type="survey_answer", category="survey_answers")
        await purge_at(app, later(noon(date(2026, 6, 15)), "P3Y", 1))  # the order alone would have gone
        assert await _records(app, rid) == 2 and (await _registrant(app, rid)).email is not None

    async def test_batches_stay_bounded_for_a_person_with_many_records(self, app, client, controller,
                                                                      register_profile, clock):
        h = controller.headers
        many, few = await _person(client, h), await _person(client, h)
        for day in range(1, 8):
            await _record(client, h, many, noon(date(2026, 6, day)))
        await _record(client, h, few, noon(date(2026, 6, 1)))
        rule = next(r for r in app.state.wiring.retention_rules if r.category == "customer_relationship")
        profile = RegisterProfile.model_validate(example())
        seen = []
        async with app.state.db.sessionmaker() as session:
            outcome = await retention.run_rule(session, rule, profile=profile, now=noon(date(2030, 1, 1)),
                                               dry_run=False, batch=3, progress=lambda _r, done, _t: seen.append(done))
        steps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
        assert outcome.acted >= 8 and max(steps) <= 3, seen  # never more than a batch, however many one person has
        assert await _records(app, many) == 0 and await _records(app, few) == 0

    async def test_a_record_kept_by_law_stays_and_says_why(self, app, client, controller, register_profile, clock):
        h = controller.headers
        rid = await _person(client, h)
        record = await _record(client, h, rid, noon(date(2026, 1, 15)))
        async with app.state.db.sessionmaker() as session:
            await session.execute(update(RelationshipRecord).where(RelationshipRecord.id == uuid.UUID(record))
                                  .values(legal_hold="GDPR Art. 17(3)(e): a claim"))
            await session.commit()
        outcome = await purge_at(app, noon(date(2031, 1, 1)))
        assert await _records(app, rid) == 1
        assert outcome["customer_relationship"].skipped["legal hold (GDPR Art. 17(3)(b))"] >= 1


class TestAccountingAct:
    """Kirjanpitolaki 1336/1997 2:10 §."""

    @pytest.mark.parametrize(("period_end", "occurred", "last_day"), [
        ("12-31", date(2019, 6, 1), date(2025, 12, 31)),
        ("04-30", date(2019, 6, 1), date(2026, 12, 31)),   # its period ended on 30.4.2020
        ("04-30", date(2019, 4, 15), date(2025, 12, 31)),  # its period ended on 30.4.2019
    ])
    async def test_vouchers_six_years_from_the_end_of_the_year_the_period_ended(
            self, app, client, controller, current, clock, period_end, occurred, last_day):
        await current(document={**example(), "financial_period_end": period_end})
        rid = await _person(client, controller.headers)
        await _record(client, controller.headers, rid, noon(occurred), record_type="invoice")
        await purge_at(app, noon(last_day))
        assert await _records(app, rid) == 1
        await purge_at(app, noon(date(last_day.year + 1, 1, 1)))
        assert await _records(app, rid) == 0

    @pytest.mark.parametrize(("period_end", "occurred", "last_day", "next_day"), [
        ("12-31", date(2019, 6, 1), date(2029, 12, 31), date(2030, 1, 1)),
        ("04-30", date(2019, 6, 1), date(2030, 4, 30), date(2030, 5, 1)),
    ])
    async def test_books_ten_years_from_the_end_of_the_financial_period(
            self, app, client, controller, current, clock, period_end, occurred, last_day, next_day):
        document = {**example(), "financial_period_end": period_end}
        document["data_categories"] = [*document["data_categories"], {
            "code": "accounting_books", "name": {"fi": "Kirjanpito", "en": "Books"}, "retention": "P10Y",
            "legal_basis": "legal_obligation", "statute": "Kirjanpitolaki (1336/1997) 2 luku 10 §",
            "minimum_retention": "P10Y"}]
        await current(document=document)
        rid = await _person(client, controller.headers)
        await _record(client, controller.headers, rid, noon(occurred), record_type="other",
                      category="accounting_books")
        await purge_at(app, noon(last_day))
        assert await _records(app, rid) == 1
        await purge_at(app, noon(next_day))
        assert await _records(app, rid) == 0


class TestOtherRecordCategories:
    @pytest.mark.parametrize(("category", "record_type", "period", "ends"), [
        ("identification_usage", "contact", "P1Y", False),
        ("course_content", "enrolment", "P2Y", True),     # from the course's end
        ("survey_answers", "survey_answer", "P2Y", False),
        ("web_behaviour", "other", "P13M", False),
        ("profiling_segments", "other", "P2Y", False),
    ])
    async def test_kept_the_day_before_gone_the_day_after(self, app, client, controller, register_profile, clock,
                                                         category, record_type, period, ends):
        rid = await _person(client, controller.headers)
        # The person stays a customer (a later contract), so only the category's own rule acts.
        await _record(client, controller.headers, rid, noon(date(2026, 6, 1)), ends=noon(date(2040, 1, 1)))
        start = noon(date(2026, 9, 1)) if ends else noon(date(2026, 6, 15))
        await _record(client, controller.headers, rid, noon(date(2026, 6, 15)), record_type=record_type,
                      category=category, ends=start if ends else None)
        await purge_at(app, later(start, period, -1))
        assert await _records(app, rid) == 2
        await purge_at(app, later(start, period, 1))
        assert await _records(app, rid) == 1

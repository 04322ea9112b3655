"""Retention rules for relationship records, run by `rekisteri purge`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.register.retention import RetentionRule
from app.registrants.models import RelationshipRecord

REC = RelationshipRecord.__table__
_NEWER = REC.alias("newer")


def _customer_gone(cutoff: datetime) -> ColumnElement[bool]:
    # "Kept N years after the customer relationship ends": a record goes only once the registrant has had
    # no record at all since the cutoff, so an ongoing customer's history stays whole.
    newer = exists().where(_NEWER.c.registrant_id == REC.c.registrant_id, _NEWER.c.occurred_at >= cutoff)
    return and_(REC.c.data_category == "customer_relationship", REC.c.occurred_at < cutoff, ~newer)


def _voucher_expired(cutoff: datetime) -> ColumnElement[bool]:
    # The Accounting Act counts from the end of the financial year: a voucher goes when its year ended
    # before the cutoff, i.e. it is from a year before the cutoff's year.
    return and_(REC.c.data_category == "accounting_vouchers",
                REC.c.occurred_at < datetime(cutoff.year, 1, 1, tzinfo=UTC))


def _rule(category: str, condition) -> RetentionRule:
    async def count(session: AsyncSession, cutoff: datetime) -> int:
        return (await session.execute(select(func.count()).select_from(REC).where(condition(cutoff)))).scalar_one()

    async def remove(session: AsyncSession, cutoff: datetime) -> int:
        return (await session.execute(delete(REC).where(condition(cutoff)))).rowcount or 0

    return RetentionRule(category=category, table="relationship_record", count=count, delete=remove)


RULES = (_rule("customer_relationship", _customer_gone), _rule("accounting_vouchers", _voucher_expired))

"""Retention of the waitlist (UniikkiLista): an entry is kept its period from joining, or from leaving, as the
profile's `waitlist_entries` category says (GDPR Art. 5(1)(e), 13(2)(a))."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.register.retention import Action, Hold, RetentionRule, RuleRun, applicable, count_reasons, held, pick_ids
from app.register.schemas import StartEvent
from app.waitlist.models import EntryStatus, WaitlistDelivery, WaitlistEntry, WaitlistEntryTag
from app.waitlist.repository import ENDED

E, TAG, D = WaitlistEntry.__table__, WaitlistEntryTag.__table__, WaitlistDelivery.__table__
_ACTIVE = E.alias("active_entry")
CATEGORY = "waitlist_entries"

# Contact details stay while the person waits on the list for a slot.
ACTIVE_ENTRY = Hold("an active waitlist entry", lambda registrant_id: exists().where(
    _ACTIVE.c.registrant_id == registrant_id, _ACTIVE.c.status == EntryStatus.active), frozenset({"contact_details"}))


def _past(run: RuleRun) -> ColumnElement[bool]:
    if run.start == StartEvent.leaving:
        return and_(E.c.status.in_(ENDED), E.c.ended_at < run.bound)
    return E.c.joined_at < run.bound


def _free(run: RuleRun) -> ColumnElement[bool]:
    return and_(_past(run), ~held(run, CATEGORY, E.c.registrant_id))


async def _count(session: AsyncSession, run: RuleRun) -> int:
    return (await session.execute(select(func.count()).select_from(E).where(_free(run)))).scalar_one()


async def _delete(session: AsyncSession, run: RuleRun) -> int:
    ids = await pick_ids(session, run, E.c.id, _free(run))
    if ids:
        await session.execute(delete(TAG).where(TAG.c.entry_id.in_(ids)))
        await session.execute(delete(D).where(D.c.entry_id.in_(ids)))
        await session.execute(delete(E).where(E.c.id.in_(ids)))
    return len(ids)


async def _skipped(session: AsyncSession, run: RuleRun) -> dict[str, int]:
    return await count_reasons(session, E, _past(run), applicable(run, CATEGORY, E.c.registrant_id))


RULES = (RetentionRule(category=CATEGORY, table="waitlist_entry", starts=(StartEvent.joining, StartEvent.leaving),
                       action=Action.delete, count=_count, act=_delete, skipped=_skipped,
                       also=("waitlist_entry_tag", "waitlist_delivery")),)
HOLDS = (ACTIVE_ENTRY,)

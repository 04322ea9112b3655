"""Retention of the outbox: a message's recipient and text are kept a short while after it was delivered or
given up on, to answer "did it go out?" (GDPR Art. 5(1)(e)); messages not yet delivered are never touched."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.models import OutboxMessage, Status
from app.register.retention import Action, RetentionRule, RuleRun, pick_ids
from app.register.schemas import StartEvent

OUT = OutboxMessage.__table__


def _done(run: RuleRun) -> ColumnElement[bool]:
    return and_(OUT.c.status.in_((Status.sent, Status.failed)),
                func.coalesce(OUT.c.sent_at, OUT.c.next_attempt_at, OUT.c.created_at) < run.bound)


async def _count(session: AsyncSession, run: RuleRun) -> int:
    return (await session.execute(select(func.count()).select_from(OUT).where(_done(run)))).scalar_one()


async def _delete(session: AsyncSession, run: RuleRun) -> int:
    ids = await pick_ids(session, run, OUT.c.id, _done(run))
    if ids:
        await session.execute(delete(OUT).where(OUT.c.id.in_(ids)))
    return len(ids)


# Operational: no example profile names it, so the rule's own period applies.
RULES = (RetentionRule(category="outbox_messages", table="outbox_message", starts=(StartEvent.completion,),
                       action=Action.delete, count=_count, act=_delete, default_retention="P90D"),)

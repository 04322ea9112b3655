"""Retention of stored replies to retried requests (they may carry personal data)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.idempotency import repository as repo
from app.register.retention import Action, RetentionRule, RuleRun
from app.register.schemas import StartEvent


async def _count_expired(session: AsyncSession, run: RuleRun) -> int:
    return await repo.count_before(session, before=run.bound)


async def _delete_expired(session: AsyncSession, run: RuleRun) -> int:
    return await repo.purge(session, before=run.bound, limit=run.batch)


# Stored replies hold personal data; the profile's `api_replays` category says how long (a day).
RULES = (RetentionRule(category="api_replays", table="idempotency_key", starts=(StartEvent.collected,),
                       action=Action.delete, count=_count_expired, act=_delete_expired, default_retention="P1D"),)

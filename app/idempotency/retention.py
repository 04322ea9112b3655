"""Retention of stored replies to retried requests (they may carry personal data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.idempotency import repository as repo
from app.register.retention import RetentionRule


async def _count_expired(session: AsyncSession, cutoff: datetime) -> int:
    return await repo.count_before(session, before=cutoff)


async def _delete_expired(session: AsyncSession, cutoff: datetime) -> int:
    return await repo.purge(session, before=cutoff)


# Stored replies hold personal data; the profile's `api_replays` category says how long (a day).
RULES = (RetentionRule(category="api_replays", table="idempotency_key", count=_count_expired,
                       delete=_delete_expired, default_retention="P1D"),)

"""Statements on idempotency keys; they never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import tuple_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repository import insert_ignoring_conflicts
from app.idempotency.models import IdempotencyKey

_TABLE = IdempotencyKey.__table__


async def claim(session: AsyncSession, *, principal: str, key: str, request_hash: str, now: datetime) -> bool:
    """Insert the key unless it exists; on PostgreSQL a racer waits here until the owner commits."""
    stmt = insert_ignoring_conflicts(session, _TABLE, index_elements=["principal", "key"]).values(
        principal=principal, key=key, request_hash=request_hash, created_at=now, response_headers={},
    ).returning(_TABLE.c.key)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def stored(session: AsyncSession, *, principal: str, key: str) -> IdempotencyKey | None:
    """The stored key, read fresh (not from the session's identity map)."""
    stmt = (select(IdempotencyKey).where(IdempotencyKey.principal == principal, IdempotencyKey.key == key)
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def complete(session: AsyncSession, *, principal: str, key: str, status_code: int, body: str,
                   headers: dict[str, str]) -> None:
    """Store the response of the claimed key, in the transaction that did the work."""
    await session.execute(update(_TABLE).where(_TABLE.c.principal == principal, _TABLE.c.key == key)
                          .values(status_code=status_code, response_body=body, response_headers=headers))


async def forget(session: AsyncSession, *, principal: str, key: str) -> None:
    """Drop one key (an expired one about to be claimed again)."""
    await session.execute(delete(_TABLE).where(_TABLE.c.principal == principal, _TABLE.c.key == key))


async def count_before(session: AsyncSession, *, before: datetime) -> int:
    """How many keys were created before a time."""
    stmt = select(func.count()).select_from(_TABLE).where(_TABLE.c.created_at < before)
    return (await session.execute(stmt)).scalar_one()


async def purge(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Drop at most `limit` keys created before a time; returns how many."""
    oldest = select(_TABLE.c.principal, _TABLE.c.key).where(_TABLE.c.created_at < before).limit(limit)
    result = await session.execute(delete(_TABLE).where(tuple_(_TABLE.c.principal, _TABLE.c.key).in_(oldest)))
    return result.rowcount or 0

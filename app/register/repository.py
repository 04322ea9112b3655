"""Statements on the register profile's versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.pagination import INT32, Keyset, PageParams
from app.register.models import RegisterVersion


async def latest(session: AsyncSession) -> RegisterVersion | None:
    """The newest version, if any."""
    stmt = select(RegisterVersion).order_by(RegisterVersion.number.desc()).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_key(session: AsyncSession) -> tuple[int, datetime] | None:
    """The number and time of the newest version, without loading its document."""
    stmt = select(RegisterVersion.number, RegisterVersion.created_at).order_by(RegisterVersion.number.desc()).limit(1)
    row = (await session.execute(stmt)).first()
    return (row.number, row.created_at) if row else None


async def by_number(session: AsyncSession, *, number: int) -> RegisterVersion | None:
    """One version by its number."""
    return await session.get(RegisterVersion, number)


async def next_number(session: AsyncSession) -> int:
    """The number the next version takes."""
    return (await session.execute(select(func.coalesce(func.max(RegisterVersion.number), 0)))).scalar_one() + 1


async def add(session: AsyncSession, version: RegisterVersion) -> None:
    """Insert a version; a concurrent writer that took the same number makes the flush fail."""
    session.add(version)
    await session.flush()


VERSIONS_KEYSET = Keyset(((RegisterVersion.number, INT32),), descending=True)


async def list_versions(session: AsyncSession, *, params: PageParams) -> list[Row]:
    """Newest first without the documents, keyset-paginated on the number."""
    columns = (RegisterVersion.number, RegisterVersion.created_at, RegisterVersion.created_by,
               RegisterVersion.created_by_name)
    stmt = select(*columns).order_by(RegisterVersion.number.desc()).limit(params.limit + 1)
    after = VERSIONS_KEYSET.after(params)
    if after is not None:
        stmt = stmt.where(after)
    return list((await session.execute(stmt)).all())

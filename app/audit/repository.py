"""Statements reading the audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry, AuditSubject
from app.db.pagination import INT64, Keyset, PageParams


@dataclass(frozen=True)
class AuditFilter:
    """What to look for in the log."""

    registrant_id: uuid.UUID | None = None
    actor_id: str | None = None
    action: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


ENTRIES_KEYSET = Keyset(((AuditEntry.seq, INT64),), descending=True)


async def list_entries(session: AsyncSession, *, filters: AuditFilter, params: PageParams) -> list[AuditEntry]:
    """Newest first, keyset-paginated on the sequence number."""
    stmt = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(params.limit + 1)
    after = ENTRIES_KEYSET.after(params)
    if after is not None:
        stmt = stmt.where(after)
    if filters.registrant_id:
        stmt = stmt.where(AuditEntry.seq.in_(
            select(AuditSubject.entry_seq).where(AuditSubject.registrant_id == filters.registrant_id)))
    if filters.actor_id:
        stmt = stmt.where(AuditEntry.actor_id == filters.actor_id)
    if filters.action:
        stmt = stmt.where(AuditEntry.action == filters.action)
    if filters.request_id:
        stmt = stmt.where(AuditEntry.request_id == filters.request_id)
    if filters.since:
        stmt = stmt.where(AuditEntry.at >= filters.since)
    if filters.until:
        stmt = stmt.where(AuditEntry.at < filters.until)
    return list((await session.execute(stmt)).scalars())

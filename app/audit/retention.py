"""Retention of the audit log (the chain is checked from the first entry kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.register.retention import RetentionRule


async def _count_audit(session: AsyncSession, cutoff: datetime) -> int:
    return await audit.purge_before(session, cutoff=cutoff, dry_run=True)


async def _delete_audit(session: AsyncSession, cutoff: datetime) -> int:
    return await audit.purge_before(session, cutoff=cutoff)


RULES = (RetentionRule(category="audit_log", table="audit_entry", count=_count_audit, delete=_delete_audit),)

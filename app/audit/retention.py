"""Retention of the audit log (the chain is checked from the first entry kept)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.register.retention import Action, RetentionRule, RuleRun
from app.register.schemas import StartEvent


async def _count_audit(session: AsyncSession, run: RuleRun) -> int:
    return await audit.purge_before(session, cutoff=run.bound, dry_run=True)


async def _delete_audit(session: AsyncSession, run: RuleRun) -> int:
    return await audit.purge_before(session, cutoff=run.bound, limit=run.batch)


# audit_pending holds entries only until the sequencer seals them into the chain (about a second's worth).
RULES = (RetentionRule(category="audit_log", table="audit_entry", starts=(StartEvent.collected,), action=Action.delete,
                       count=_count_audit, act=_delete_audit, also=("audit_subject", "audit_pending")),)

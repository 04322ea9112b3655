"""The retention job: each data category's rule removes what has outlived the profile's retention period.

Each domain declares its rules next to its data (`RULES` in its `retention.py`); `app.wiring` collects them
and `rekisteri purge` runs them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principal import SYSTEM, Principal
from app.core import clock
from app.register.schemas import LegalBasis, PurgeLine, RegisterProfile, duration_span
from app.register.service import current_profile

CountOrDelete = Callable[[AsyncSession, datetime], Awaitable[int]]


@dataclass(frozen=True)
class RetentionRule:
    """How to count and delete the rows of one data category older than a cutoff."""

    category: str
    table: str
    count: CountOrDelete
    delete: CountOrDelete
    # Used when the profile names no retention for the category (e.g. operational data like login throttles).
    default_retention: str | None = None


def cutoff_for(profile: RegisterProfile | None, rule: RetentionRule, now: datetime) -> datetime | None:
    """Rows older than this may go; a legal-obligation category keeps at least its statutory minimum."""
    found = profile.category(rule.category) if profile else None
    if found is None:
        return now - duration_span(rule.default_retention) if rule.default_retention else None
    span = duration_span(found.retention)
    if found.legal_basis == LegalBasis.legal_obligation and found.minimum_retention:
        span = max(span, duration_span(found.minimum_retention))
    return now - span


async def purge(
    session: AsyncSession,
    *,
    dry_run: bool,
    rules: Sequence[RetentionRule],
    actor: Principal = SYSTEM,
    progress: Callable[[str], None] | None = None,
) -> list[PurgeLine]:
    """Apply every rule (or only count, with dry_run); the run is audited as `retention.purge`."""
    profile = await current_profile(session)
    now = clock.utcnow()
    lines: list[PurgeLine] = []
    for index, rule in enumerate(rules, start=1):
        if progress:
            progress(f"[{index}/{len(rules)}] {rule.category} ({rule.table})")
        cutoff = cutoff_for(profile, rule, now)
        if cutoff is None:
            lines.append(PurgeLine(category=rule.category, table=rule.table, cutoff=None, count=0, deleted=False,
                                   skipped="no retention period for this category in the register profile"))
            continue
        count = await (rule.count if dry_run else rule.delete)(session, cutoff)
        lines.append(PurgeLine(category=rule.category, table=rule.table, cutoff=cutoff, count=count,
                               deleted=not dry_run))
    audit.record(session, actor=actor, action="retention.purge", details={
        "dry_run": dry_run, "counts": {f"{line.category}/{line.table}": line.count for line in lines}})
    return lines


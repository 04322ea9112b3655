"""The built-in gauges: outbox queue, data-subject request deadlines, audit chain, database pool."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditHead, AuditPending
from app.db.session import Database
from app.metrics.service import Gauge, Rows
from app.outbox.models import Kind, OutboxMessage, Status
from app.subject_requests import repository as requests_repo

DUE_SOON = timedelta(days=7)


async def outbox_depth(session: AsyncSession, now: datetime) -> Rows:
    """Messages waiting or being sent, by kind."""
    stmt = (select(OutboxMessage.kind, func.count()).where(OutboxMessage.status.in_([Status.pending, Status.sending]))
            .group_by(OutboxMessage.kind))
    counts = dict((await session.execute(stmt)).all())
    return [({"kind": kind.value}, counts.get(kind.value, 0)) for kind in Kind]


async def outbox_oldest_age(session: AsyncSession, now: datetime) -> Rows:
    """Seconds since the oldest waiting message was queued, by kind (0 when none waits)."""
    stmt = (select(OutboxMessage.kind, func.min(OutboxMessage.created_at))
            .where(OutboxMessage.status.in_([Status.pending, Status.sending])).group_by(OutboxMessage.kind))
    oldest = dict((await session.execute(stmt)).all())
    return [({"kind": kind.value}, max((now - oldest[kind.value]).total_seconds(), 0.0) if kind.value in oldest else 0.0)
            for kind in Kind]


async def outbox_failed(session: AsyncSession, now: datetime) -> Rows:
    """Messages given up on, by kind."""
    stmt = select(OutboxMessage.kind, func.count()).where(OutboxMessage.status == Status.failed).group_by(OutboxMessage.kind)
    counts = dict((await session.execute(stmt)).all())
    return [({"kind": kind.value}, counts.get(kind.value, 0)) for kind in Kind]


async def requests_open(session: AsyncSession, now: datetime) -> Rows:
    """Open data-subject requests."""
    return [({}, sum(row["n"] for row in await requests_repo.open_counts(session)))]


async def requests_due_soon(session: AsyncSession, now: datetime) -> Rows:
    """Open requests due within the next 7 days (not yet overdue)."""
    return [({}, await requests_repo.count_open_due(session, before=now + DUE_SOON, after=now))]


async def requests_overdue(session: AsyncSession, now: datetime) -> Rows:
    """Open requests past their due date."""
    return [({}, await requests_repo.count_open_due(session, before=now))]


async def audit_chain_length(session: AsyncSession, now: datetime) -> Rows:
    """Entries in the audit hash chain (from its first kept entry to its head)."""
    head = (await session.execute(select(AuditHead.last_seq, AuditHead.first_seq))).first()
    return [({}, max(head.last_seq - head.first_seq + 1, 0) if head else 0)]


async def audit_unsealed(session: AsyncSession, now: datetime) -> Rows:
    """Audit entries written but not yet sealed into the chain."""
    return [({}, (await session.execute(select(func.count()).select_from(AuditPending))).scalar_one())]


async def audit_sealing_lag(session: AsyncSession, now: datetime) -> Rows:
    """Seconds the oldest unsealed audit entry has waited for the sequencer (0 when none waits)."""
    oldest = (await session.execute(select(func.min(AuditPending.at)))).scalar()
    return [({}, max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0)]


def pool_in_use(database: Database) -> Rows:
    """Database connections checked out of this process's pool."""
    checkedout = getattr(getattr(database.engine, "pool", None), "checkedout", None)
    return [({}, checkedout() if callable(checkedout) else 0)]


GAUGES = [
    Gauge("rekisteri_outbox_queue_depth", "Messages pending or being sent", ["kind"], collect=outbox_depth),
    Gauge("rekisteri_outbox_oldest_age_seconds", "Age of the oldest pending message", ["kind"],
          collect=outbox_oldest_age),
    Gauge("rekisteri_outbox_failed_messages", "Messages given up on", ["kind"], collect=outbox_failed),
    Gauge("rekisteri_requests_open", "Open data-subject requests", collect=requests_open),
    Gauge("rekisteri_requests_due_within_7d", "Open requests due within 7 days", collect=requests_due_soon),
    Gauge("rekisteri_requests_overdue", "Open requests past their due date", collect=requests_overdue),
    Gauge("rekisteri_audit_chain_length", "Entries in the audit hash chain", collect=audit_chain_length),
    Gauge("rekisteri_audit_unsealed_entries", "Audit entries waiting to be sealed", collect=audit_unsealed),
    Gauge("rekisteri_audit_sealing_lag_seconds", "Age of the oldest unsealed audit entry", collect=audit_sealing_lag),
    Gauge("rekisteri_db_pool_in_use", "Database connections in use by this process", probe=pool_in_use),
]

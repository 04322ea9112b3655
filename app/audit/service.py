"""Recording audit entries in the caller's transaction, chaining them, and verifying the chain."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Hashable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, Select, delete, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from app.audit import chain, checkpoints
from app.audit import repository as repo
from app.audit.chain import CHAINED_FIELDS, entry_hash
from app.audit.models import AuditEntry, AuditHead, AuditPurgePermit, AuditSubject
from app.audit.schemas import AuditEntryRead, SealedHead, VerificationRead
from app.auth.principal import Principal
from app.core import clock
from app.core.context import current_client_addr, current_request_id
from app.db.pagination import Page, PageParams, make_page
from app.db.repository import dialect_name
from app.db.session import AUDIT_READ_ASYNC, AUDIT_SEAL_INLINE

_PENDING = "audit_pending"
_UNSEALED = "audit_unsealed_written"  # an entry went in with the statement it audits (read_audited)
SEAL_INLINE_BATCH = 5000


def new_entry(
    *,
    actor: Principal,
    action: str,
    resource_type: str | None = None,
    resource_id: object | None = None,
    registrant_ids: Iterable[uuid.UUID] = (),
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An entry's content as the caller knows it; the sealer adds its place in the chain."""
    return {
        "id": uuid.uuid4(),
        "at": clock.utcnow(),
        "actor_type": actor.kind,
        "actor_id": str(actor.id) if actor.id else None,
        "actor_name": actor.name,
        "role": actor.role.value if actor.role else None,
        "action": action,
        "resource_type": resource_type,
        "resource_id": str(resource_id) if resource_id is not None else None,
        "registrant_ids": sorted({str(r) for r in registrant_ids}),
        "request_id": current_request_id(),
        "client_addr": current_client_addr(),
        "outcome": outcome,
        "details": details or {},
    }


def record(
    session: AsyncSession,
    *,
    actor: Principal,
    action: str,
    resource_type: str | None = None,
    resource_id: object | None = None,
    registrant_ids: Iterable[uuid.UUID] = (),
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """Queue an entry; it is written (unsealed) when the session commits, in the same transaction."""
    session.info.setdefault(_PENDING, []).append(new_entry(
        actor=actor, action=action, resource_type=resource_type, resource_id=resource_id,
        registrant_ids=registrant_ids, outcome=outcome, details=details))


async def read_audited(session: AsyncSession, stmt: Select[Any], *, params: dict[str, Any] | None = None,
                       shape: Hashable | None = None, actor: Principal, action: str, resource_type: str,
                       order_by: tuple[str, ...], limit: int) -> list[RowMapping]:
    """Run a SELECT of registrant rows (with its bind `params`) and audit it: one entry naming the registrants among
    the first `limit` rows (in `order_by` order), with their count (GDPR Art. 5(2), 30, 32).

    On PostgreSQL the lookup and the audit insert are one statement (kept per `shape`, a key of the statement's
    structure, when the caller gives one), and when the request has not touched the database yet and a sequencer
    seals (no inline sealing), that statement runs on its own as one implicit transaction: one round trip. With
    REKISTERI_AUDIT_READ_COMMIT=async it commits with synchronous_commit off.
    """
    entry = new_entry(actor=actor, action=action, resource_type=resource_type)
    if dialect_name(session) != "postgresql":
        rows = list((await session.execute(stmt, params)).mappings())
        entry["registrant_ids"] = sorted({str(row["id"]) for row in rows[:limit]})
        entry["details"] = {"count": min(len(rows), limit)}
        session.info.setdefault(_PENDING, []).append(entry)
        return rows
    async_commit = bool(session.info.get(AUDIT_READ_ASYNC))
    key = (shape, async_commit, order_by, limit) if shape is not None else None
    combined = _COMBINED.get(key) if key is not None else None
    if combined is None:
        combined = chain.lookup_with_entry(stmt, order_by=order_by, limit=limit, async_commit=async_commit)
        if key is not None and len(_COMBINED) < 1000:
            _COMBINED[key] = combined
    values = {**(params or {}), **chain.entry_params(entry)}
    if session.info.get(AUDIT_SEAL_INLINE, True) or session.in_transaction():
        session.info[_UNSEALED] = True  # sealed at commit when inline (see _write_pending)
        return list((await session.execute(combined, values)).mappings())
    conn = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return list((await conn.execute(combined, values)).mappings())


@asynccontextmanager
async def writing_connection(session: AsyncSession, *,
                             lean: bool = True) -> AsyncIterator[tuple[AsyncConnection, bool]]:
    """PostgreSQL: a connection for writes whose statements carry their own audit entries (`chain.pending_insert`),
    and whether it is a lean one.

    Lean (when the request has not touched the database yet and a sequencer seals): a connection of its own in
    autocommit, so each such statement is one implicit transaction, one round trip with no BEGIN or COMMIT; the
    write and its entry still commit together. Otherwise the session's connection in its transaction, the entries
    sealed at its commit when sealing is inline (and always when the caller says `lean=False`, e.g. because its
    checks read through the session). The session stays untouched by a lean write, so a caller that finds
    it cannot finish leanly may leave the block and do the work in the session instead.
    """
    if not lean or session.info.get(AUDIT_SEAL_INLINE, True) or session.in_transaction():
        session.info[_UNSEALED] = True  # sealed at commit when inline (see _write_pending)
        yield await session.connection(), False
        return
    async with session.bind.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT"), True


async def write_entry(conn: AsyncConnection, entry: dict[str, Any]) -> None:
    """Insert one entry (from `new_entry`) unsealed on a connection from `writing_connection`."""
    await conn.execute(insert(chain.PENDING), [entry])


# Combined lookup-and-audit statements by shape: built once, then only executed (their values are bind parameters).
_COMBINED: dict[Hashable, Select[Any]] = {}


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Write the queued entries unsealed in the committing transaction; seal them too when sealing is inline."""
    pending = session.info.pop(_PENDING, None)
    written = session.info.pop(_UNSEALED, False)
    if not (pending or written):
        return
    conn = session.connection()
    if pending:
        chain.write_unsealed(conn, pending)
    if session.info.get(AUDIT_SEAL_INLINE, True):
        chain.lock(conn, wait=True)
        while chain.seal(conn, limit=SEAL_INLINE_BATCH) == SEAL_INLINE_BATCH:
            pass


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_UNSEALED, None)


@dataclass(frozen=True)
class Verification:
    """The result of walking the chain."""

    ok: bool
    entries: int
    first_broken: int | None
    head_seq: int = 0
    head_hash: str = ""


@dataclass(frozen=True)
class Backlog:
    """Entries written but not yet sealed into the chain."""

    unsealed: int
    oldest_age_seconds: float


async def backlog(session: AsyncSession) -> Backlog:
    """How many entries wait for the sequencer, and for how long the oldest has waited."""
    count, oldest = await session.run_sync(lambda s: chain.backlog(s.connection()))
    age = max((clock.utcnow() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return Backlog(count, age)


async def verify(session: AsyncSession, *, batch: int = 2000) -> Verification:
    """Recompute every hash from the chain's first kept entry to the sealed head, and check that the subject index
    (`audit_subject`, what the consultation log is read from) names exactly each entry's registrants."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    expected_seq, expected_prev, checked = head.first_seq, head.first_prev_hash, 0
    columns = [getattr(AuditEntry, name) for name in (*CHAINED_FIELDS, "hash")]
    while True:
        # Up to the head read above: entries a sequencer seals meanwhile belong to the next verification.
        rows = (await session.execute(
            select(*columns).where(AuditEntry.seq >= expected_seq, AuditEntry.seq <= head.last_seq)
            .order_by(AuditEntry.seq).limit(batch)
        )).mappings().all()
        indexed = await _subjects(session, rows)
        for row in rows:
            if (row["seq"] != expected_seq or row["prev_hash"] != expected_prev or entry_hash(dict(row)) != row["hash"]
                    or indexed.get(row["seq"], set()) != set(row["registrant_ids"])):
                return Verification(False, checked, expected_seq, head.last_seq, head.last_hash)
            expected_seq, expected_prev, checked = expected_seq + 1, row["hash"], checked + 1
        if len(rows) < batch:
            break
    if expected_seq - 1 != head.last_seq or expected_prev != head.last_hash:
        return Verification(False, checked, expected_seq, head.last_seq, head.last_hash)
    return Verification(True, checked, None, head.last_seq, head.last_hash)


async def _subjects(session: AsyncSession, rows: list[Any]) -> dict[int, set[str]]:
    """The subject index of a run of entries: registrant ids by sequence number."""
    if not rows:
        return {}
    found: dict[int, set[str]] = {}
    stmt = select(AuditSubject.entry_seq, AuditSubject.registrant_id).where(
        AuditSubject.entry_seq.between(rows[0]["seq"], rows[-1]["seq"]))
    for seq, registrant_id in (await session.execute(stmt)).all():
        found.setdefault(seq, set()).add(str(registrant_id))
    return found


@dataclass(frozen=True)
class CheckpointCheck:
    """The chain held against checkpoints kept outside the database."""

    ok: bool
    checked: int
    purged: int  # checkpoints older than the first entry retention kept, which can no longer be compared
    failed_at: int | None = None
    reason: str | None = None


async def verify_checkpoints(session: AsyncSession, pinned: list[checkpoints.Checkpoint]) -> CheckpointCheck:
    """Each checkpoint's signature, and the sealed chain's hash at its sequence number (GDPR Art. 5(2), 32(1)(b)).

    Together with `verify` this fails on any rewrite, reordering or truncation of what a checkpoint covers, even one
    whose later hashes were all recomputed.
    """
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    wanted = [c.seq for c in pinned if c.seq >= head.first_seq]
    hashes = dict((await session.execute(select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.seq.in_(wanted))))
                  .all()) if wanted else {}
    hashes[head.first_seq - 1] = head.first_prev_hash
    checked = purged = 0
    for mark in sorted(pinned, key=lambda c: c.seq):
        if not mark.signature_ok():
            return CheckpointCheck(False, checked, purged, mark.seq, "the checkpoint's signature does not verify")
        if mark.seq > head.last_seq:
            return CheckpointCheck(False, checked, purged, mark.seq,
                                   f"the chain ends at {head.last_seq}, before this checkpoint (truncated)")
        if mark.seq < head.first_seq - 1:
            purged += 1
            continue
        if hashes.get(mark.seq) != mark.hash:
            return CheckpointCheck(False, checked, purged, mark.seq,
                                   "the chain's hash here differs from the checkpoint (rewritten or reordered)")
        checked += 1
    return CheckpointCheck(True, checked, purged)


async def verification_report(session: AsyncSession, *, actor: Principal) -> VerificationRead:
    """The chain's verification, its sealed head and the sealing lag; verifying is itself audited."""
    # The backlog first: an entry sealed while the chain is walked is then counted once (in the next call's head).
    waiting = await backlog(session)
    result = await verify(session)
    record(session, actor=actor, action="audit.verify", details={"ok": result.ok})
    return VerificationRead(ok=result.ok, entries=result.entries, first_broken=result.first_broken,
                            sealed_head=SealedHead(sequence=result.head_seq, hash=result.head_hash),
                            unsealed=waiting.unsealed, oldest_unsealed_age_seconds=waiting.oldest_age_seconds)


async def purge_before(session: AsyncSession, *, cutoff: datetime, dry_run: bool = False,
                       limit: int | None = None) -> int:
    """Remove the oldest entries (at most `limit`, a prefix of the chain) recorded before `cutoff`; the chain
    still verifies.

    The database triggers refuse DELETEs unless audit_purge_permit has a row, which only this
    transaction sees.
    """
    first_kept = (await session.execute(select(func.min(AuditEntry.seq)).where(AuditEntry.at >= cutoff))).scalar()
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())).scalar_one()
    last_removed = (first_kept - 1) if first_kept is not None else head.last_seq
    if last_removed < head.first_seq:
        return 0
    if limit is not None:
        last_removed = min(last_removed, head.first_seq + limit - 1)
    count = last_removed - head.first_seq + 1
    if dry_run:
        return count
    anchor = (await session.execute(select(AuditEntry.hash).where(AuditEntry.seq == last_removed))).scalar_one()
    await session.execute(insert(AuditPurgePermit).values(id=1))
    await session.execute(delete(AuditSubject).where(AuditSubject.entry_seq <= last_removed))
    await session.execute(delete(AuditEntry).where(AuditEntry.seq <= last_removed))
    await session.execute(delete(AuditPurgePermit))
    await session.execute(update(AuditHead).where(AuditHead.id == 1)
                          .values(first_seq=last_removed + 1, first_prev_hash=anchor))
    return count


async def list_entries(
    session: AsyncSession, *, actor: Principal, filters: repo.AuditFilter, params: PageParams
) -> Page[AuditEntryRead]:
    """A page of the log; reading the log is itself audited."""
    rows = await repo.list_entries(session, filters=filters, params=params)
    page = make_page(rows, params, keyset=repo.ENTRIES_KEYSET, convert=AuditEntryRead.model_validate)
    record(session, actor=actor, action="audit.read", details={"count": len(page.items)})
    return page

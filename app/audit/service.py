"""Recording audit entries in the caller's transaction, chaining them, and verifying the chain."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.audit import repository as repo
from app.audit.models import AuditEntry, AuditHead, AuditPurgePermit, AuditSubject
from app.audit.schemas import AuditEntryRead
from app.auth.principal import Principal
from app.core import clock
from app.core.context import current_client_addr, current_request_id
from app.db.pagination import Page, PageParams, make_page

GENESIS_HASH = "0" * 64
_PENDING = "audit_pending"
_CHAINED_FIELDS = (
    "seq", "id", "at", "actor_type", "actor_id", "actor_name", "role", "action", "resource_type",
    "resource_id", "registrant_ids", "request_id", "client_addr", "outcome", "details", "prev_hash",
)


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
    """Queue an entry; it is chained and written when the session commits, in the same transaction."""
    entry = {
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
    session.info.setdefault(_PENDING, []).append(entry)


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry's chained fields (previous hash included)."""
    content = {name: entry[name] for name in _CHAINED_FIELDS}
    content["id"] = str(content["id"])
    content["at"] = content["at"].isoformat()
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Chain and insert the queued entries last, so the head row is locked for the shortest time."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and len(pending) == 1:
        _write_one_postgres(session, pending[0])
        return
    head_table, entry_table, subject_table = AuditHead.__table__, AuditEntry.__table__, AuditSubject.__table__
    seq, prev = session.execute(select(head_table.c.last_seq, head_table.c.last_hash)
                                .where(head_table.c.id == 1).with_for_update()).one()
    subjects = []
    for entry in pending:
        seq += 1
        entry["seq"], entry["prev_hash"] = seq, prev
        entry["hash"] = prev = entry_hash(entry)
        subjects += [{"entry_seq": seq, "registrant_id": uuid.UUID(r)} for r in entry["registrant_ids"]]
    move_head = update(head_table).where(head_table.c.id == 1).values(last_seq=seq, last_hash=prev)
    if postgres:
        # One round trip while the head row is locked: the inserts ride along as CTEs of the head update
        # (the foreign key of audit_subject is checked at the end of the statement).
        move_head = move_head.add_cte(insert(entry_table).values(pending).cte("new_entries"))
        if subjects:
            move_head = move_head.add_cte(insert(subject_table).values(subjects).cte("new_subjects"))
        session.execute(move_head)
        return
    session.execute(insert(entry_table), pending)
    if subjects:
        session.execute(insert(subject_table), subjects)
    session.execute(move_head)


# The usual case, one entry per request, in one statement: lock the head, chain, insert, move the head.
# PostgreSQL computes the hash over the canonical JSON that `_canonical_parts` splits around the two
# values only it knows (previous hash and sequence number), so `entry_hash` and `verify` hold unchanged.
_ONE_ENTRY = text("""
WITH head AS (
    SELECT last_seq + 1 AS seq, last_hash AS prev_hash FROM audit_head WHERE id = 1 FOR UPDATE
), chained AS (
    SELECT seq, prev_hash, encode(sha256(convert_to(
        CAST(:before_prev AS text) || prev_hash || CAST(:before_seq AS text) || seq::text || CAST(:after_seq AS text),
        'UTF8')), 'hex') AS hash
    FROM head
), new_entry AS (
    INSERT INTO audit_entry (seq, id, at, actor_type, actor_id, actor_name, role, action, resource_type, resource_id,
                             registrant_ids, request_id, client_addr, outcome, details, prev_hash, hash)
    SELECT seq, CAST(:id AS uuid), CAST(:at AS timestamptz), :actor_type, :actor_id, :actor_name, :role, :action,
           :resource_type, :resource_id, CAST(:registrant_ids AS json), :request_id, :client_addr, :outcome,
           CAST(:details AS json), prev_hash, hash
    FROM chained
    RETURNING seq, hash
), new_subjects AS (
    INSERT INTO audit_subject (entry_seq, registrant_id)
    SELECT new_entry.seq, subject FROM new_entry, unnest(CAST(:subjects AS uuid[])) AS subject
)
UPDATE audit_head SET last_seq = new_entry.seq, last_hash = new_entry.hash FROM new_entry WHERE audit_head.id = 1
""")


def _canonical_parts(entry: dict[str, Any]) -> tuple[str, str, str]:
    """The canonical JSON of `entry_hash` split around the previous hash and the sequence number."""
    marker = uuid.uuid4().hex
    prev_marker, seq_marker = f"@prev-{marker}@", f"@seq-{marker}@"
    canonical = json.dumps({**{name: entry.get(name) for name in _CHAINED_FIELDS}, "id": str(entry["id"]),
                            "at": entry["at"].isoformat(), "prev_hash": prev_marker, "seq": seq_marker},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    before_prev, rest = canonical.split(json.dumps(prev_marker))
    between, after_seq = rest.split(json.dumps(seq_marker))
    return before_prev + '"', '"' + between, after_seq


def _write_one_postgres(session: Session, entry: dict[str, Any]) -> None:
    before_prev, before_seq, after_seq = _canonical_parts(entry)
    session.execute(_ONE_ENTRY, {
        **{name: entry[name] for name in ("id", "at", "actor_type", "actor_id", "actor_name", "role", "action",
                                          "resource_type", "resource_id", "request_id", "client_addr", "outcome")},
        "registrant_ids": json.dumps(entry["registrant_ids"]), "details": json.dumps(entry["details"]),
        "subjects": [uuid.UUID(r) for r in entry["registrant_ids"]],
        "before_prev": before_prev, "before_seq": before_seq, "after_seq": after_seq,
    })


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class Verification:
    """The result of walking the chain."""

    ok: bool
    entries: int
    first_broken: int | None


async def verify(session: AsyncSession, *, batch: int = 2000) -> Verification:
    """Recompute every hash from the chain's first kept entry to the head."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    expected_seq, expected_prev, checked = head.first_seq, head.first_prev_hash, 0
    columns = [getattr(AuditEntry, name) for name in (*_CHAINED_FIELDS, "hash")]
    while True:
        rows = (await session.execute(
            select(*columns).where(AuditEntry.seq >= expected_seq).order_by(AuditEntry.seq).limit(batch)
        )).mappings().all()
        for row in rows:
            if row["seq"] != expected_seq or row["prev_hash"] != expected_prev or entry_hash(dict(row)) != row["hash"]:
                return Verification(False, checked, expected_seq)
            expected_seq, expected_prev, checked = expected_seq + 1, row["hash"], checked + 1
        if len(rows) < batch:
            break
    if expected_seq - 1 != head.last_seq or expected_prev != head.last_hash:
        return Verification(False, checked, expected_seq)
    return Verification(True, checked, None)



async def purge_before(session: AsyncSession, *, cutoff: datetime, dry_run: bool = False) -> int:
    """Remove the oldest entries (a prefix of the chain) recorded before `cutoff`; the chain still verifies.

    The database triggers refuse DELETEs unless audit_purge_permit has a row, which only this
    transaction sees.
    """
    first_kept = (await session.execute(select(func.min(AuditEntry.seq)).where(AuditEntry.at >= cutoff))).scalar()
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())).scalar_one()
    last_removed = (first_kept - 1) if first_kept is not None else head.last_seq
    if last_removed < head.first_seq:
        return 0
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

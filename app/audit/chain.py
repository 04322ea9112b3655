"""Sealing: unsealed entries get their sequence number and hash, in commit order, one batch at a time.

Whoever seals — the sequencer (`rekisteri worker`, or the app process in development) or, with
REKISTERI_AUDIT_SEALING=inline, each writing transaction at its commit — runs `seal` inside one
transaction, so a batch is sealed whole or not at all: a sealer killed mid-batch leaves its entries
unsealed for the next one, and an entry is never sealed twice (it moves from `audit_pending` to
`audit_entry` in the transaction that chains it).

Order. A batch is chained in the order the entries were written (`pending_id`, taken from a
sequence inside the writing transaction), among the entries whose transactions have committed.
So an entry whose transaction committed before another transaction began always comes first in
the chain: it has the smaller number, and it is visible to any sealer that sees the later one,
so it is sealed in an earlier batch or earlier in the same batch. Each writer's entries keep their
order. Transactions that overlap are ordered as the sealer finds them, which is all any sequencer
can promise without a lock held through every commit (the lock this design removes from the
request path). Nothing is skipped: an entry is sealed when its transaction's commit is visible,
however late that is, because what is unsealed stays in `audit_pending` until it is sealed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import (
    FromClause,
    Insert,
    Select,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection

from app.audit.models import AuditEntry, AuditHead, AuditPending, AuditSubject

GENESIS_HASH = "0" * 64
CHAINED_FIELDS = (
    "seq", "id", "at", "actor_type", "actor_id", "actor_name", "role", "action", "resource_type",
    "resource_id", "registrant_ids", "request_id", "client_addr", "outcome", "details", "prev_hash",
)
ENTRY_FIELDS = CHAINED_FIELDS[1:-1]  # what a transaction writes; the sealer adds seq, prev_hash and hash
# pg_advisory_xact_lock key ("rkseal"): one sealer at a time per database. SQLite's single writer needs none.
SEALER_LOCK = 0x726B7365616C

PENDING, ENTRY, HEAD, SUBJECT = (AuditPending.__table__, AuditEntry.__table__, AuditHead.__table__,
                                 AuditSubject.__table__)


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry's chained fields (previous hash included)."""
    content = {name: entry[name] for name in CHAINED_FIELDS}
    content["id"] = str(content["id"])
    content["at"] = content["at"].isoformat()
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_unsealed(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Insert entries without a chain position, in the writer's own transaction (no shared lock)."""
    conn.execute(insert(PENDING), entries)


def lock(conn: Connection, *, wait: bool) -> bool:
    """Take the sealer's lock for the rest of the transaction (PostgreSQL); False when `wait` is off and another holds it.

    A writing transaction sealing its own entries at commit (REKISTERI_AUDIT_SEALING=inline) waits; the
    sequencer gives way to a sealer at work. SQLite's single writer needs no lock.
    """
    if conn.dialect.name != "postgresql":
        return True
    if wait:
        conn.execute(select(func.pg_advisory_xact_lock(SEALER_LOCK)))
        return True
    return bool(conn.execute(select(func.pg_try_advisory_xact_lock(SEALER_LOCK))).scalar())


def lookup_with_entry(stmt: Select[Any], *, order_by: tuple[str, ...], limit: int, async_commit: bool) -> Select[Any]:
    """PostgreSQL: `stmt` and the unsealed insert of its audit entry as one statement. The entry's own fields are the
    bind parameters `audit_<field>` (see `entry_params`); it names the `id`s of the first `limit` rows (sorted, as
    `registrant_ids`) and their count (`details.count`). Built once per statement shape and reused."""
    found = stmt.cte("found")
    page = select(found.c.id).order_by(*(found.c[name] for name in order_by)).limit(limit).subquery("page")
    as_text = cast(page.c.id, Text)
    ids = select(func.coalesce(func.json_agg(aggregate_order_by(as_text, as_text)), literal_column("'[]'::json")))
    count = select(func.count()).select_from(page)
    values = [bindparam(f"audit_{name}", type_=PENDING.c[name].type) for name in _OWN_FIELDS]
    source = select(*values, ids.scalar_subquery(), func.json_build_object("count", count.scalar_subquery()))
    if async_commit:
        # Only this transaction's commit skips waiting for the WAL flush (REKISTERI_AUDIT_READ_COMMIT=async).
        mode = select(func.set_config("synchronous_commit", "off", True).label("mode")).cte("commit_mode")
        source = source.select_from(mode)
    audit = insert(PENDING).from_select([*_OWN_FIELDS, "registrant_ids", "details"], source).cte("audit")
    return select(found).order_by(*(found.c[name] for name in order_by)).add_cte(audit)


def entry_params(entry: dict[str, Any]) -> dict[str, Any]:
    """The bind parameters of `lookup_with_entry` for one entry."""
    return {f"audit_{name}": entry[name] for name in _OWN_FIELDS}


_OWN_FIELDS = tuple(name for name in ENTRY_FIELDS if name not in ("registrant_ids", "details"))


def pending_insert(after: FromClause) -> Insert:
    """PostgreSQL: the unsealed insert of an audit entry for each row of `after` (a CTE of the write it audits, which
    returns one row when the write happened and none when it did not), to be added to that write's statement; the
    entry's fields are the bind parameters `audit_<field>` (see `write_params`)."""
    values = [bindparam(f"audit_{name}", type_=PENDING.c[name].type) for name in ENTRY_FIELDS]
    return insert(PENDING).from_select(list(ENTRY_FIELDS), select(*values).select_from(after))


def write_params(entry: dict[str, Any]) -> dict[str, Any]:
    """The bind parameters of `pending_insert` for one entry."""
    return {f"audit_{name}": entry[name] for name in ENTRY_FIELDS}


def seal(conn: Connection, *, limit: int) -> int:
    """Chain up to `limit` unsealed entries visible to this transaction; the number sealed. The caller holds `lock`."""
    stmt = select(PENDING.c.pending_id, *(PENDING.c[name] for name in ENTRY_FIELDS))
    rows = conn.execute(stmt.order_by(PENDING.c.pending_id).limit(limit)).mappings().all()
    if not rows:
        return 0
    seq, prev = conn.execute(select(HEAD.c.last_seq, HEAD.c.last_hash).where(HEAD.c.id == 1).with_for_update()).one()
    entries, subjects = [], []
    for row in rows:
        seq += 1
        entry = {name: row[name] for name in ENTRY_FIELDS}
        entry["seq"], entry["prev_hash"] = seq, prev
        entry["hash"] = prev = entry_hash(entry)
        entries.append(entry)
        subjects += [{"entry_seq": seq, "registrant_id": uuid.UUID(r)} for r in entry["registrant_ids"]]
    conn.execute(insert(ENTRY), entries)
    if subjects:
        conn.execute(insert(SUBJECT), subjects)
    conn.execute(delete(PENDING).where(PENDING.c.pending_id.in_([row["pending_id"] for row in rows])))
    conn.execute(update(HEAD).where(HEAD.c.id == 1).values(last_seq=seq, last_hash=prev))
    return len(rows)


def backlog(conn: Connection) -> tuple[int, Any]:
    """How many entries wait to be sealed, and when the oldest of them was recorded."""
    count, oldest = conn.execute(select(func.count(), func.min(PENDING.c.at))).one()
    return count, oldest


"""The append-only, hash-chained audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class AuditEntryFields:
    """What an audited action writes about itself (shared by unsealed and sealed entries)."""

    id: Mapped[uuid.UUID] = mapped_column(unique=True)
    at: Mapped[datetime]
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(200))
    registrant_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AuditEntry(AuditEntryFields, Base):
    """One sealed event. `hash` covers the canonical content and the previous entry's hash."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_at", "at"),
        Index("ix_audit_entry_actor_id", "actor_id"),
        Index("ix_audit_entry_action", "action"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditPending(AuditEntryFields, Base):
    """An entry its transaction wrote without a chain position; the sequencer seals it into `audit_entry`.

    The request's own transaction inserts it, so the action and its audit commit or roll back together,
    and no lock shared by all requests is taken on the request path.
    """

    __tablename__ = "audit_pending"

    # Insertion order: an entry whose transaction committed before another's began has the smaller number.
    pending_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                            autoincrement=True)


class AuditCheckpoint(Base):
    """A signed statement of the sealed head (Ed25519); copies kept outside the database pin the chain."""

    __tablename__ = "audit_checkpoint"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    # The raw Ed25519 public key (base64) and its fingerprint: the first 16 hex digits of its SHA-256.
    public_key: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))


class AuditSubject(Base):
    """Which registrants an entry concerns, so the log can be searched by registrant."""

    __tablename__ = "audit_subject"

    entry_seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("audit_entry.seq"), primary_key=True)
    registrant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)


class AuditHead(Base):
    """The single row naming the chain's last sealed entry; only the sealer (and a purge) locks it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    # After retention purges the oldest entries, the chain is checked from here.
    first_seq: Mapped[int] = mapped_column(BigInteger, default=1)
    first_prev_hash: Mapped[str] = mapped_column(String(64))


class AuditPurgePermit(Base):
    """A row here, inside the purging transaction only, lets the database triggers admit DELETEs."""

    __tablename__ = "audit_purge_permit"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)

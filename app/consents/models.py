"""The consent and objection ledger, and the current state derived from it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin


class ConsentEvent(IdMixin, Base):
    """One grant, withdrawal or objection; never updated or deleted through the API."""

    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_registrant_id_effective_at", "registrant_id", "effective_at"),)

    registrant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"))
    purpose: Mapped[str] = mapped_column(String(64))
    # None: every channel of the purpose.
    channel: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    # What was shown and how it was collected: text/policy version, reference, client address, user agent,
    # and whether the person or their guardian gave it.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    given_by: Mapped[str] = mapped_column(String(16))
    # When the person said it (evidence collected_at, possibly in the past); orders the ledger.
    effective_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_by_name: Mapped[str | None] = mapped_column(String(200))
    # The register profile version in force, so the receipt can be given again exactly as it was.
    profile_version: Mapped[int | None]


class ConsentState(Base):
    """Where each purpose and channel stands for one registrant: derived from the ledger, kept for speed."""

    __tablename__ = "consent_state"
    __table_args__ = (Index("ix_consent_state_purpose_channel_state", "purpose", "channel", "state"),)

    registrant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent_event.id"))
    updated_at: Mapped[datetime]


class OptOutUse(Base):
    """A used one-click opt-out token (SHA-256 of it; the token itself is never stored): each works once."""

    __tablename__ = "optout_use"
    __table_args__ = (Index("ix_optout_use_registrant_id", "registrant_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    registrant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"))
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    # The withdrawal or objection the use recorded (set in the same transaction, right after the use is claimed).
    event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consent_event.id"))
    used_at: Mapped[datetime]

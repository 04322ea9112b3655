"""The outbox: one row per delivery, written in the transaction that decided to send it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core import clock
from app.db.base import Base, IdMixin, enum_type


class Kind(StrEnum):
    """How a message travels."""

    email = "email"
    sms = "sms"
    webhook = "webhook"


class Status(StrEnum):
    """Where a message is: waiting, held by a worker, delivered, or given up on."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


# Not yet delivered: what erasure and restriction cancel.
UNSENT = (Status.pending, Status.sending)


class OutboxMessage(IdMixin, Base):
    """One delivery: what to send, how often it was tried, and who holds it now."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        # The worker's claim query: due pending rows, and sending rows whose lease ran out.
        Index("ix_outbox_message_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_message_ref", "ref_type", "ref_id"),
        Index("ix_outbox_message_registrant_id", "registrant_id"),
    )

    kind: Mapped[Kind] = mapped_column(enum_type(Kind, name="kind"))
    # email: to, subject, text, headers; sms: to, text; webhook: url, body, signing_key_ref (never the secret).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[Status] = mapped_column(enum_type(Status, name="status"), default=Status.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int]
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None]
    # Codes and reasons only, never addresses or message text.
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.utcnow)
    ref_type: Mapped[str | None] = mapped_column(String(64))
    ref_id: Mapped[str | None] = mapped_column(String(64))
    registrant_id: Mapped[uuid.UUID | None]

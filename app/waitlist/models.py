"""Waitlist entries and their tags, slot notifications, and one delivery per entry and channel."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, enum_type


class EntryStatus(StrEnum):
    """On the list, or left it: unsubscribed, enrolled, or removed by staff."""

    active = "active"
    left = "left"
    enrolled = "enrolled"
    removed = "removed"


class ContactHolder(StrEnum):
    """Whose email and phone an entry's notices go to: the person's own, or the child's guardian's."""

    self = "self"
    guardian = "guardian"


class NotificationStatus(StrEnum):
    """A slot still offered in waves, or taken."""

    open = "open"
    closed = "closed"


class WaitlistEntry(IdMixin, Base):
    """A person waiting for notices of free slots; FIFO by (joined_at, id) among active entries."""

    __tablename__ = "waitlist_entry"
    __table_args__ = (
        Index("ix_waitlist_entry_status_joined_at_id", "status", "joined_at", "id"),
        Index("ix_waitlist_entry_registrant_id", "registrant_id"),
        Index("ix_waitlist_entry_created_by_joined_at", "created_by", "joined_at"),
        Index("ix_waitlist_entry_phone", "phone"),
        Index("ix_waitlist_entry_guardian_id", "guardian_id"),
    )

    registrant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"))
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    # The guardian whose email and phone these are (a child's entry); None: the person's own.
    guardian_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("registrant.id"))
    email: Mapped[str | None] = mapped_column(String(254))
    # E.164.
    phone: Mapped[str | None] = mapped_column(String(20))
    by_email: Mapped[bool]
    by_sms: Mapped[bool]
    cancellations: Mapped[bool]
    enrolments: Mapped[bool]
    status: Mapped[EntryStatus] = mapped_column(enum_type(EntryStatus, name="status"))
    joined_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # unsubscribe | enrolled | removed: how the entry left the list.
    end_reason: Mapped[str | None] = mapped_column(String(16))
    # SHA-256 of the token handed out when joining; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(80))


class WaitlistEntryTag(Base):
    """A tag (teacher, instrument, course...) that narrows which notices reach an entry."""

    __tablename__ = "waitlist_entry_tag"
    __table_args__ = (Index("ix_waitlist_entry_tag_tag", "tag"),)

    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("waitlist_entry.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


class WaitlistNotification(IdMixin, Base):
    """A free slot announced to the list, in one or more waves until it is closed."""

    __tablename__ = "waitlist_notification"
    __table_args__ = (
        Index("ix_waitlist_notification_created_by_created_at", "created_by", "created_at"),
        CheckConstraint("mode IN ('all', 'first_n')", name="mode"),
    )

    interest: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(1000))
    slot_starts_at: Mapped[datetime]
    slot_description: Mapped[str] = mapped_column(String(300))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    mode: Mapped[str] = mapped_column(String(16))
    wave_size: Mapped[int | None]
    waves: Mapped[int]
    recipients: Mapped[int]
    status: Mapped[NotificationStatus] = mapped_column(enum_type(NotificationStatus, name="status"))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class WaitlistDelivery(Base):
    """One notice to one entry on one channel; its id is the id of the outbox message that carries it."""

    __tablename__ = "waitlist_delivery"
    __table_args__ = (
        UniqueConstraint("notification_id", "entry_id", "channel"),
        # The per-phone SMS count goes entry (by phone) -> its deliveries (by entry_id).
        Index("ix_waitlist_delivery_entry_id", "entry_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("waitlist_notification.id"))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("waitlist_entry.id"))
    registrant_id: Mapped[uuid.UUID]
    channel: Mapped[str] = mapped_column(String(16))
    wave: Mapped[int]
    # SHA-256 of the unsubscribe token in this notice's link.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]



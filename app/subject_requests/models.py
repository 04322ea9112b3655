"""Data-subject requests, their transitions, and the frozen access or portability package."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin, enum_type
from app.subject_requests.states import RequestAction, RequestStatus, RequestType


class SubjectRequest(IdMixin, TimestampMixin, Base):
    """A GDPR request (access, rectification, erasure, restriction, portability, objection) and where it stands."""

    __tablename__ = "subject_request"
    __table_args__ = (
        Index("ix_subject_request_status_due_at", "status", "due_at"),
        Index("ix_subject_request_registrant_id_type", "registrant_id", "type"),
        Index("ix_subject_request_created_by", "created_by"),
        Index("ix_subject_request_received_at_id", "received_at", "id"),
    )

    type: Mapped[RequestType] = mapped_column(enum_type(RequestType, name="type"))
    status: Mapped[RequestStatus] = mapped_column(enum_type(RequestStatus, name="status"))
    # Unknown at first for a letter from someone not yet found in the register; linked later.
    registrant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("registrant.id"))
    requester: Mapped[dict[str, Any]] = mapped_column(JSON)
    on_behalf: Mapped[str] = mapped_column(String(20))
    # Who acts for the person and on what authority (guardian, representative); None when the person acts.
    authority: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(16))
    # False when the request came by a channel the profile does not advertise (accepted, flagged for staff).
    channel_advertised: Mapped[bool] = mapped_column(default=True, server_default=true())
    signed: Mapped[bool] = mapped_column(default=False)
    # The person asked to be told which recipients were notified (GDPR Art. 19, second sentence).
    recipients_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    details: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    purposes: Mapped[list[str]] = mapped_column(JSON, default=list)
    due_at: Mapped[datetime]
    original_due_at: Mapped[datetime]
    extended_at: Mapped[datetime | None]
    extension_reason: Mapped[str | None] = mapped_column(Text)
    # When the person was told of the extension and its reason (Art. 12(3)).
    extension_told_at: Mapped[datetime | None]
    free: Mapped[bool] = mapped_column(default=True)
    # The completed access request inside the free interval that makes this one not free.
    previous_request_id: Mapped[uuid.UUID | None]
    duplicate_of: Mapped[uuid.UUID | None]
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    verified_at: Mapped[datetime | None]
    # Fee, refusal ground and their Art. 12(5) justification, rejection reason, what handlers did.
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    completed_at: Mapped[datetime | None]
    status_callback_url: Mapped[str | None] = mapped_column(String(2000))
    # A delivery credential, not a login secret: it signs our callbacks, so it must be usable, not hashed.
    callback_secret: Mapped[str | None] = mapped_column(String(100))
    # The principal subject that filed it; automation clients see only their own.
    created_by: Mapped[str] = mapped_column(String(80))


class SubjectRequestEvent(IdMixin, Base):
    """One transition of a request: who, when, from which status to which, and with what."""

    __tablename__ = "subject_request_event"
    __table_args__ = (Index("ix_subject_request_event_request_id_at", "request_id", "at"),)

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subject_request.id"))
    at: Mapped[datetime]
    action: Mapped[RequestAction] = mapped_column(enum_type(RequestAction, name="action", length=32))
    from_status: Mapped[RequestStatus | None] = mapped_column(enum_type(RequestStatus, name="from_status"))
    to_status: Mapped[RequestStatus] = mapped_column(enum_type(RequestStatus, name="to_status"))
    actor: Mapped[str] = mapped_column(String(80))
    actor_name: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SubjectRequestPackage(Base):
    """The access or portability package, frozen at completion as the exact bytes that are downloaded."""

    __tablename__ = "subject_request_package"

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subject_request.id"), primary_key=True)
    format_version: Mapped[str] = mapped_column(String(10))
    generated_at: Mapped[datetime]
    sha256: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class SubjectRequestConfirmation(IdMixin, Base):
    """A one-time link that confirms identity through a contact already in the register (`known_contact`).

    Only the SHA-256 of the token is kept; the link works once, until it expires.
    """

    __tablename__ = "subject_request_confirmation"
    __table_args__ = (Index("ix_subject_request_confirmation_request_id", "request_id"),)

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subject_request.id"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    # The address or number as masked in the evidence (never in full).
    sent_to: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(80))

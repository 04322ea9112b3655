"""Registrants, their external references, customer types, change history and relationship records."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin, enum_type


class RegistrantKind(StrEnum):
    """A natural person or an organisation (with its contact persons)."""

    person = "person"
    organisation = "organisation"


class RegistrantStatus(StrEnum):
    """Active; restricted (GDPR Art. 18: kept, not used); erased (Art. 17: only the husk is left)."""

    active = "active"
    restricted = "restricted"
    erased = "erased"


RESTRICTED = f"status = '{RegistrantStatus.restricted.value}'"  # the predicates of two partial indexes
CONTRACT = "ends_at IS NOT NULL"


class Registrant(IdMixin, TimestampMixin, Base):
    """A data subject: a person or an organisation (with its contact persons)."""

    __tablename__ = "registrant"
    __table_args__ = (
        Index("ix_registrant_email", "email"),
        Index("ix_registrant_phone", "phone"),
        Index("ix_registrant_created_at_id", "created_at", "id"),
        # The few restricted registrants (GDPR Art. 18), a hold every retention rule asks about: partial, so asking
        # of a whole batch at once reads this small index rather than the table.
        Index("ix_registrant_restricted", "id", postgresql_where=text(RESTRICTED), sqlite_where=text(RESTRICTED)),
    )

    kind: Mapped[RegistrantKind] = mapped_column(enum_type(RegistrantKind, name="kind"))
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(300))
    business_id: Mapped[str | None] = mapped_column(String(16))
    date_of_birth: Mapped[date | None]
    # Only an age was given: `date_of_birth` is the latest day consistent with it (the guardian rule holds longest).
    birth_date_estimated: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Derived, never set by clients: a child's linked guardians' `{email, phone}` (each from the first-linked active
    # guardian that has one), rewritten whenever links, a guardian's contact or status change. It keeps a child's
    # audience address one expression of this row (the indexes of migration 0020); `guardian_link` is the truth.
    guardian: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    contact_persons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Stored lower-cased, so lookups compare case-insensitively through a plain index.
    email: Mapped[str | None] = mapped_column(String(254))
    # E.164.
    phone: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(2))
    status: Mapped[RegistrantStatus] = mapped_column(enum_type(RegistrantStatus, name="status"),
                                                     default=RegistrantStatus.active)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Why staff should look at this registrant (e.g. its guardian was erased); cleared by staff.
    attention: Mapped[str | None] = mapped_column(String(300))
    # The principal subject (`client:<id>` / `user:<id>`) that created it; integrations see their own.
    created_by: Mapped[str] = mapped_column(String(80))


class GuardianSource(StrEnum):
    """Where a guardian link came from."""

    api = "api"
    waitlist = "waitlist"
    migration = "migration"


class GuardianLink(Base):
    """A guardian (huoltaja, Laki lapsen huollosta 361/1983) of a child; both are registrants of their own."""

    __tablename__ = "guardian_link"
    __table_args__ = (
        Index("ix_guardian_link_guardian_id", "guardian_id"),
        CheckConstraint("child_id <> guardian_id", name="not_self"),
    )

    child_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"), primary_key=True)
    guardian_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"), primary_key=True)
    source: Mapped[GuardianSource] = mapped_column(enum_type(GuardianSource, name="source"))
    linked_at: Mapped[datetime]
    linked_by: Mapped[str] = mapped_column(String(80))


class RegistrantRef(IdMixin, Base):
    """An external system's identifier for a registrant; one registrant per (system, id)."""

    __tablename__ = "registrant_ref"
    __table_args__ = (UniqueConstraint("system", "external_id"),)

    registrant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"), index=True)
    system: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class RegistrantCustomerType(Base):
    """A customer type a registrant has (season, course, one-off lesson, web shop...)."""

    __tablename__ = "registrant_customer_type"

    registrant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"), primary_key=True)
    customer_type: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class RegistrantHistory(IdMixin, Base):
    """One change of a registrant: who, when, which fields, old and new values."""

    __tablename__ = "registrant_history"
    __table_args__ = (Index("ix_registrant_history_registrant_id_version", "registrant_id", "version"),)

    registrant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str | None] = mapped_column(String(200))
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RelationshipRecord(IdMixin, Base):
    """Customer-relationship data: an order, invoice, lesson, meeting, enrolment, answer or contact."""

    __tablename__ = "relationship_record"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_relationship_record_registrant_id_occurred_at", "registrant_id", "occurred_at"),
        # Contracts and courses (records with an end): whether a relationship is still running, from the index alone.
        Index("ix_relationship_record_contract", "registrant_id", "ends_at", postgresql_where=text(CONTRACT),
              sqlite_where=text(CONTRACT)),
    )

    registrant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrant.id"))
    type: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime]
    # The end of the contract, season or course the record starts; the customer relationship lasts until then.
    ends_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_category: Mapped[str] = mapped_column(String(64))
    # The customer was offered a clear, free refusal of marketing when the contact was collected (917/2014 § 200(2)).
    opt_out_offered: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Set when an erasure kept the record because a law still requires it (GDPR Art. 17(3)(b)).
    legal_hold: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]

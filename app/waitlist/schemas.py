"""Request and response bodies of waitlist entries, notifications, unsubscribing and statistics."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, EmailStr, Field, field_validator

from app.consents.schemas import Evidence
from app.core import clock
from app.core.phone import Phone
from app.core.schemas import RequestModel, ResponseModel
from app.core.types import Instant, Name, line, text
from app.registrants.schemas import BirthDate
from app.waitlist.models import ContactHolder, EntryStatus

Channel = Literal["email", "sms"]
Interest = Literal["cancellations", "enrolments"]
JoinSource = Literal["web_form", "booking", "staff"]
Tag = line(40, pattern=r"^[a-z0-9][a-z0-9_:-]{0,39}$")
Email = Annotated[EmailStr, AfterValidator(str.lower)]
Token = line(128, min_length=20)


SlotDescription = line(300)
Message = text(1000)


def _unique(values: list[str]) -> list[str]:
    """The values sorted; a value listed twice is an error."""
    if len(set(values)) != len(values):
        raise ValueError("list each value once")
    return sorted(values)


class GuardianJoining(RequestModel):
    """The guardian who puts a child on the list; notices go to the guardian's email and phone."""

    given_name: Name
    family_name: Name
    email: Email | None = None
    phone: Phone | None = None


class EntryCreate(RequestModel):
    """Joining the list; joining is consent to notices on the channels chosen.

    For a child, `guardian` names the guardian: the child is a registrant of its own (found by names and date of
    birth among the guardian's children, never by the guardian's email or phone), linked to the guardian's
    registrant, and notices go to the guardian's contact details.
    """

    given_name: Name
    family_name: Name
    date_of_birth: BirthDate | None = Field(default=None, description="The date of birth, or else `age`")
    age: int | None = Field(default=None, ge=0, le=120, description=(
        "Full years today, when the date of birth is not known: kept as an estimated date of birth, never as a "
        "number"))
    guardian: GuardianJoining | None = Field(default=None, description=(
        "Required under the profile's guardian age; allowed under 18"))
    email: Email | None = Field(default=None, description="The person's own; for a child with a guardian, "
                                                            "notices use the guardian's")
    phone: Phone | None = None
    language: Literal["fi", "sv", "en"] = "fi"
    channels: Annotated[list[Channel], AfterValidator(_unique)] = Field(min_length=1, max_length=2)
    interests: Annotated[list[Interest], AfterValidator(_unique)] = Field(min_length=1, max_length=2)
    tags: Annotated[list[Tag], AfterValidator(_unique)] = Field(default_factory=list, max_length=20)
    source: JoinSource | None = Field(default=None, description="Default: booking for clients, staff for users")
    evidence: Evidence = Field(default_factory=Evidence, description="What the person was shown when joining")


class EntryRead(ResponseModel):
    """An entry as stored, with its place in the queue while active."""

    id: uuid.UUID
    registrant_id: uuid.UUID
    given_name: str
    family_name: str
    email: str | None = Field(description="Where notices go")
    phone: str | None
    contact_holder: ContactHolder = Field(description="Whose email and phone notices go to")
    guardian_id: uuid.UUID | None = Field(description="The guardian whose contact details notices use")
    channels: list[Channel]
    interests: list[Interest]
    tags: list[str]
    status: EntryStatus
    joined_at: datetime
    ended_at: datetime | None
    position: int | None = Field(description="1-based FIFO place among active entries; null when not active")


class EntryCreated(EntryRead):
    """A new entry and its unsubscribe token (shown once; only its hash is kept)."""

    unsubscribe_token: str | None = Field(description="Null when the person was already on the list")
    unsubscribe_url: str | None


class Slot(RequestModel):
    """The free slot a notice announces."""

    starts_at: Instant
    description: SlotDescription

    @field_validator("starts_at")
    @classmethod
    def _future(cls, value: datetime) -> datetime:
        """A slot time with its offset, in the future."""
        if value <= clock.utcnow():
            raise ValueError("the slot is in the past")
        return value


class NotificationCreate(RequestModel):
    """Announce a free slot to the active entries with this interest (and these tags)."""

    interest: Interest
    message: Message
    slot: Slot
    tags: Annotated[list[Tag], AfterValidator(_unique)] = Field(
        default_factory=list, max_length=10, description="Only entries carrying every one of these tags")
    mode: Literal["all", "first_n"] = "all"
    limit: int | None = Field(default=None, ge=1, le=10_000, description="Entries per wave; required for first_n")


class SlotRead(ResponseModel):
    """The announced slot."""

    starts_at: datetime
    description: str


class NotificationRead(ResponseModel):
    """A notification and how many it reached."""

    id: uuid.UUID
    interest: Interest
    message: str
    slot: SlotRead
    tags: list[str]
    mode: Literal["all", "first_n"]
    limit: int | None
    status: Literal["open", "closed"]
    waves: int
    recipients: int = Field(description="Entries notified, all waves together")
    wave_recipients: int = Field(description="Entries notified by this request's wave (0 on a read)")
    deliveries: int = Field(description="Messages queued by this request's wave (one per entry and channel)")
    skipped_sms_limit: int = Field(description="SMS left out of this wave by the per-phone hourly limit")
    created_at: datetime
    closed_at: datetime | None


class Unsubscribe(RequestModel):
    """The token from a notice's link or the joining confirmation."""

    token: Token


class Unsubscribed(ResponseModel):
    """The entry has left the list."""

    status: Literal["left"] = "left"


class InterestChannelCount(ResponseModel):
    """Active entries with one interest on one channel."""

    interest: Interest
    channel: Channel
    entries: int


class WaitlistStats(ResponseModel):
    """Counts only, no personal data."""

    active_entries: int
    by_interest_channel: list[InterestChannelCount]
    median_wait_days: float | None
    notices_sent_30d: int
    notices_failed_30d: int
    notices_pending: int
    unsubscribes_30d: int
    unsubscribes_total: int

"""Request and response bodies of the consent ledger, receipts and audiences."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, IPvAnyAddress

from app.consents.state import Action, State
from app.core.schemas import RequestModel, ResponseModel
from app.core.types import Instant, line, text
from app.register.schemas import Channel


EvidenceText = text(4000, min_length=0)
PolicyVersion = line(100, min_length=0)
Reference = line(200, min_length=0)
UserAgent = line(500, min_length=0)
Code = line(64, pattern=r"^[a-z][a-z0-9_]{0,63}$")


class Source(StrEnum):
    """Where the person expressed it."""

    web_form = "web_form"
    booking = "booking"
    web_shop = "web_shop"
    letter = "letter"
    in_person = "in_person"
    phone = "phone"
    unsubscribe_link = "unsubscribe_link"
    staff = "staff"


class Evidence(RequestModel):
    """What was shown and how the answer was collected."""

    text: EvidenceText | None = Field(
        default=None, description="The consent text shown to the person")
    policy_version: PolicyVersion | None = None
    reference: Reference | None = Field(
        default=None, description="e.g. the form id or the letter's archive number")
    collected_at: Instant | None = Field(default=None, description="When the person said it; not in the future")
    client_addr: IPvAnyAddress | None = Field(default=None, description="For web forms, if the caller has it")
    user_agent: UserAgent | None = None
    given_by: Literal["self", "guardian"] | None = Field(
        default=None, description="For a child under the guardian age this is always the guardian")


class ConsentEventCreate(RequestModel):
    """A grant, withdrawal or objection; withdrawing needs exactly the fields granting does."""

    action: Action
    purpose: Code
    channel: Channel | None = Field(default=None, description="Omit for every channel of the purpose")
    source: Source
    evidence: Evidence = Field(default_factory=Evidence)


class ConsentEventRead(ResponseModel):
    """A ledger event as recorded."""

    id: uuid.UUID
    registrant_id: uuid.UUID
    action: Action
    purpose: str
    channel: str | None
    source: str
    given_by: str
    evidence: dict[str, Any]
    effective_at: datetime
    recorded_at: datetime
    recorded_by: str
    profile_version: int | None


class ReceiptController(ResponseModel):
    """Kantara CR v1.1 `piiControllers[]`."""

    piiController: str
    onBehalf: bool = False
    contact: str | None = None
    address: dict[str, Any] | None = None
    email: str | None = None
    phone: str | None = None


class ReceiptPurpose(ResponseModel):
    """Kantara CR v1.1 `services[].purposes[]`."""

    purpose: str
    purposeCategory: list[str]
    consentType: str
    piiCategory: list[str]
    primaryPurpose: bool
    termination: str
    thirdPartyDisclosure: bool
    thirdPartyName: str | None = None


class ReceiptService(ResponseModel):
    """Kantara CR v1.1 `services[]`."""

    service: str
    purposes: list[ReceiptPurpose]


class ConsentReceipt(ResponseModel):
    """A consent receipt in the Kantara Initiative Consent Receipt v1.1 shape, plus what the event said."""

    version: Literal["KI-CR-v1.1.0"] = "KI-CR-v1.1.0"
    jurisdiction: str
    consentTimestamp: int
    collectionMethod: str
    consentReceiptID: str
    publicKey: str | None = None
    language: str
    piiPrincipalId: str
    piiControllers: list[ReceiptController]
    policyUrl: str
    services: list[ReceiptService]
    sensitive: bool = False
    spiCat: list[str] = Field(default_factory=list)
    action: Action
    channel: str | None


class ConsentEventWithReceipt(ConsentEventRead):
    """A recorded event and its receipt."""

    receipt: ConsentReceipt


class ChannelState(ResponseModel):
    """Where one purpose and channel stand, and the event that decided it."""

    purpose: str
    channel: str
    state: State
    event_id: uuid.UUID | None


class ConsentStateRead(ResponseModel):
    """A registrant's current state per purpose and channel; with `history=true`, the whole ledger."""

    registrant_id: uuid.UUID
    states: list[ChannelState]
    history: list[ConsentEventRead] | None = None


class AudienceMember(ResponseModel):
    """Someone who may be contacted, with just the contact the channel needs."""

    registrant_id: uuid.UUID
    language: str
    email: str | None = None
    phone: str | None = None
    address: dict[str, Any] | None = None


class ConsentStats(ResponseModel):
    """How many registrants stand where, per purpose, channel and state (no personal data)."""

    counts: list[dict[str, Any]]

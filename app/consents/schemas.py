"""Request and response bodies of the consent ledger, receipts and audiences."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, IPvAnyAddress

from app.consents.rules import Basis, Reason
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
    given_by: Literal["self", "guardian"] | None = Field(default=None, description=(
        "Who expressed it. Default `self`, except for a child under 18, where it must be said. A grant for a child "
        "under the profile's guardian age needs `guardian` (GDPR Art. 8); the child's own withdrawal or objection "
        "is always accepted (Art. 7(3), 21)"))
    guardian_id: uuid.UUID | None = Field(default=None, description=(
        "With `given_by: guardian`: the registrant id of the child's linked guardian who expressed it"))


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
    """Where one purpose and channel stand in effect, the event that decided it, and whether the audience admits it."""

    purpose: str
    channel: str
    state: State = Field(description=(
        "The effective state: never `granted` when the law makes the grant ineffective (e.g. a child's grant not "
        "given by the guardian, a restricted registrant); `ledger_state` keeps what the ledger says"))
    event_id: uuid.UUID | None
    ledger_state: State = State.none
    in_audience: bool = Field(default=False, description="Whether the audience of this purpose and channel admits "
                                                         "the registrant (an address for the channel aside)")
    basis: Basis | None = Field(default=None, description="On which basis, when admitted")
    reason: Reason = Reason.no_consent


class ConsentStateRead(ResponseModel):
    """A registrant's current state per purpose and channel; with `history=true`, the whole ledger."""

    registrant_id: uuid.UUID
    states: list[ChannelState]
    history: list[ConsentEventRead] | None = None


class AudienceMember(ResponseModel):
    """Someone who may be contacted, with just the contact the channel needs, the basis and a personal opt-out."""

    registrant_id: uuid.UUID
    language: str
    email: str | None = None
    phone: str | None = None
    address: dict[str, Any] | None = None
    basis: Basis
    contact_person: str | None = Field(default=None, description="For an organisation: its contact person")
    optout_url: str | None = Field(default=None, description=(
        "Personal one-click opt-out link to put in the message (917/2014 § 202); null only for a purpose the person "
        "cannot stop (neither consent, direct marketing nor objectable, e.g. a contract's service messages)"))
    list_unsubscribe: str | None = Field(default=None, description="Email only: the RFC 2369 List-Unsubscribe value")
    list_unsubscribe_post: str | None = Field(default=None, description=(
        "Email only: the RFC 8058 List-Unsubscribe-Post value (`List-Unsubscribe=One-Click`)"))


class AudienceFacts(ResponseModel):
    """What the rule engine read about one registrant."""

    kind: str
    status: str
    child: bool
    ledger_state: State
    given_by: str | None
    sale_with_opt_out: bool
    has_contact: bool


class AudienceExplanation(ResponseModel):
    """Why one registrant is in or out of an audience (`?explain=true&registrant_id=`)."""

    registrant_id: uuid.UUID
    purpose: str
    channel: str
    admitted: bool
    basis: Basis | None
    reason: Reason
    facts: AudienceFacts


class OptOut(RequestModel):
    """A one-click opt-out as JSON: the token of the link, and its purpose and channel."""

    token: line(128, min_length=20)
    purpose: Code
    channel: Channel


class OptedOut(ResponseModel):
    """The opt-out was recorded in the ledger."""

    status: Literal["opted_out"] = "opted_out"
    purpose: str
    channel: str
    action: Action


class ConsentStats(ResponseModel):
    """How many registrants stand where, per purpose, channel and state (no personal data)."""

    counts: list[dict[str, Any]]

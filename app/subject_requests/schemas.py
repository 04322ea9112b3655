"""Request and response bodies of data-subject requests, their transitions and statistics."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import EmailStr, Field

from app.core.phone import Phone
from app.core.schemas import RequestModel, ResponseModel
from app.core.types import Instant, JsonValue, Name, line, text
from app.register.schemas import RequestChannel
from app.subject_requests.states import RequestStatus, RequestType  # noqa: F401  (re-exported)

Text = text(4000)
Reason = text(4000, min_length=3)
PurposeCode = line(64, pattern=r"^[a-z][a-z0-9_]{0,63}$")


PostalAddressText = text(500)
FieldName = line(64)
CallbackUrl = line(2000)
EvidenceRef = line(300)




class OnBehalf(StrEnum):
    """Whose right the requester uses."""

    self = "self"
    guardian = "guardian"
    contact_person = "contact_person"
    representative = "representative"


class VerificationMethod(StrEnum):
    """How the requester's identity was checked."""

    signed_letter = "signed_letter"
    in_person = "in_person"
    strong_electronic_identification = "strong_electronic_identification"
    existing_account = "existing_account"


class Requester(RequestModel):
    """Who sent the request."""

    name: Name
    email: EmailStr | None = None
    phone: Phone | None = None
    address: PostalAddressText | None = None


class Change(RequestModel):
    """One correction a rectification request asks for (seed 000: the wrong and the corrected data)."""

    field: FieldName
    current_value: JsonValue = None
    corrected_value: JsonValue = None


class RequestCreate(RequestModel):
    """A data-subject request as received."""

    type: RequestType
    registrant_id: uuid.UUID | None = Field(default=None, description="May be linked later")
    requester: Requester
    on_behalf: OnBehalf = OnBehalf.self
    received_at: Instant | None = Field(default=None, description="Not in the future; default: now")
    channel: RequestChannel
    signed: bool = False
    details: Text | None = None
    changes: list[Change] = Field(default_factory=list, max_length=50,
                                  description="Rectification only: what is wrong and what is right")
    purposes: list[PurposeCode] = Field(default_factory=list, max_length=50,
                                        description="Objection only: the purposes objected to")
    status_callback_url: CallbackUrl | None = Field(
        default=None, description="Each status change is POSTed here, signed with the callback secret")


class Verification(ResponseModel):
    """How, by whom and when the identity was verified."""

    method: VerificationMethod
    evidence_ref: str | None = None
    by: str
    by_name: str | None = None
    at: datetime


class RequestRead(ResponseModel):
    """A data-subject request."""

    id: uuid.UUID
    type: RequestType
    status: RequestStatus
    registrant_id: uuid.UUID | None
    requester: dict[str, Any]
    on_behalf: OnBehalf
    received_at: datetime
    channel: RequestChannel
    signed: bool
    details: str | None
    changes: list[dict[str, Any]]
    purposes: list[str]
    due_at: datetime
    original_due_at: datetime
    overdue: bool
    extended_at: datetime | None
    extension_reason: str | None
    extension_told_at: datetime | None
    free: bool
    previous_request_id: uuid.UUID | None
    duplicate_of: uuid.UUID | None
    verification: Verification | None
    outcome: dict[str, Any] | None
    completed_at: datetime | None
    status_callback_url: str | None
    package_available: bool
    allowed_actions: list[str]
    created_at: datetime
    updated_at: datetime


class RequestEventRead(ResponseModel):
    """One transition of a request, as logged."""

    at: datetime
    action: str
    from_status: RequestStatus | None
    to_status: RequestStatus
    actor: str
    actor_name: str | None
    details: dict[str, Any]


class RecipientNotice(ResponseModel):
    """A recipient told of a rectification, erasure or restriction (GDPR Art. 19), and whether it acknowledged."""

    recipient: str
    kind: str
    acknowledged: bool
    status: str


class RequestDetail(RequestRead):
    """A request with its transition log (who did what, when) and the recipients told of its outcome."""

    events: list[RequestEventRead]
    recipients: list[RecipientNotice] = Field(default_factory=list)


class RequestCreated(RequestRead):
    """A filed request, with the callback secret shown this once."""

    callback_secret: str | None = Field(
        default=None, description="Verifies `X-Rekisteri-Signature` of status callbacks; shown only now")


class VerifyAction(RequestModel):
    """Record how the identity was verified (and link the registrant if not yet linked)."""

    action: Literal["verify"]
    method: VerificationMethod
    evidence_ref: EvidenceRef | None = None
    registrant_id: uuid.UUID | None = None


class LinkAction(RequestModel):
    """Link the registrant the request is about."""

    action: Literal["link"]
    registrant_id: uuid.UUID


class StartAction(RequestModel):
    """Start working on a verified request."""

    action: Literal["start"]


class ExtendAction(RequestModel):
    """Extend the deadline once by the profile's extension, before it passes, telling the person why."""

    action: Literal["extend"]
    reason: Reason
    person_informed: bool = Field(description="The person was told of the extension and its reason")
    informed_at: Instant | None = Field(default=None, description="When; default now")


class Fee(RequestModel):
    """A reasonable fee (Art. 12(5)), with its ground and justification."""

    amount: Annotated[Decimal, Field(gt=0, le=10000, max_digits=8, decimal_places=2)]
    currency: Literal["EUR"] = "EUR"
    ground: Literal["repeat_within_free_interval", "manifestly_unfounded", "excessive"]
    justification: Reason


class ChangeDecision(RequestModel):
    """Staff's decision on one requested rectification, in the order of the request's `changes`."""

    approve: bool
    reason: Reason | None = Field(default=None, description="Required when rejecting")


class CompleteAction(RequestModel):
    """Complete the request: access and portability freeze the package; rectification applies the approved
    changes; erasure erases; restriction restricts; objection records the objections."""

    action: Literal["complete"]
    fee: Fee | None = None
    note: Text | None = None
    decisions: list[ChangeDecision] | None = Field(
        default=None, max_length=50, description="Rectification only: one decision per requested change")


class LiftRestrictionAction(RequestModel):
    """End the restriction a completed restriction request put in force (recorded)."""

    action: Literal["lift_restriction"]
    reason: Reason


class RejectAction(RequestModel):
    """Refuse the request, with the reason told to the person (and the right to complain)."""

    action: Literal["reject"]
    reason: Reason
    ground: Literal["manifestly_unfounded", "excessive", "identity_not_verified", "no_data", "other"] = "other"


class WithdrawAction(RequestModel):
    """The person withdrew the request."""

    action: Literal["withdraw"]
    reason: Text | None = None


Transition = Annotated[VerifyAction | LinkAction | StartAction | ExtendAction | CompleteAction | RejectAction
                       | WithdrawAction | LiftRestrictionAction, Field(discriminator="action")]


class RequestStats(ResponseModel):
    """Open requests and deadlines, without personal data."""

    generated_at: datetime
    open_by_type: dict[str, int]
    open_by_status: dict[str, int]
    open_total: int
    overdue: int
    due_within_days: int
    due_within: int
    median_days_to_complete_90d: float | None
    completed_90d: int
    extensions_used: int

"""Request and response bodies of data-subject requests, their transitions and statistics."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import EmailStr, Field

from app.core.phone import Phone
from app.core.schemas import RequestModel, ResponseModel
from app.core.types import Instant, JsonValue, Name, line, text
from app.register.schemas import IdentityMethod, RequestChannel
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


VerificationMethod = IdentityMethod


class AuthorityBasis(StrEnum):
    """On what authority someone uses another person's rights."""

    custody = "custody"  # a guardian (huoltaja) of a child
    power_of_attorney = "power_of_attorney"  # a written authorisation (valtakirja)
    guardianship = "guardianship"  # a court-appointed guardian (edunvalvoja)
    organisation_role = "organisation_role"  # a contact person of an organisation registrant
    other = "other"


class Authority(RequestModel):
    """Who acts for the person and on what authority (a guardian, an authorised representative)."""

    name: Name
    basis: AuthorityBasis
    evidence: line(500) | None = Field(
        default=None, description="What shows the authority (e.g. a power of attorney dated 1.2.2026)")
    registrant_id: uuid.UUID | None = Field(default=None, description="The acting person, if in the register")


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
    authority: Authority | None = Field(default=None, description="Required unless on_behalf is self")
    received_at: Instant | None = Field(default=None, description="Not in the future; default: now")
    channel: RequestChannel = Field(description="Any channel is accepted; one the profile does not advertise "
                                                "is flagged for staff")
    signed: bool = False
    recipients_requested: bool = Field(default=False, description="The person asked to be told which recipients "
                                                                  "were notified (GDPR Art. 19)")
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
    evidence: dict[str, Any] | None = None
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
    authority: dict[str, Any] | None
    received_at: datetime
    channel: RequestChannel
    channel_advertised: bool
    signed: bool
    recipients_requested: bool
    details: str | None
    changes: list[dict[str, Any]]
    purposes: list[str]
    due_at: datetime
    original_due_at: datetime
    due_on: date = Field(description="The last day, on the profile's calendar (Regulation 1182/71 Art. 3)")
    time_zone: str
    overdue: bool
    flags: list[str] = Field(description="For staff: unadvertised_channel, repeat_within_interval, duplicate")
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


class DocumentType(StrEnum):
    """The identity document shown in person; its number is never recorded."""

    passport = "passport"
    identity_card = "identity_card"
    driving_licence = "driving_licence"
    residence_permit = "residence_permit"
    other = "other"


class VerifyAction(RequestModel):
    """Record how staff verified the identity (and link the registrant if not yet linked); `known_contact`
    is verified by the person following the link of `send_confirmation` instead."""

    action: Literal["verify"]
    method: VerificationMethod
    evidence_ref: EvidenceRef | None = Field(
        default=None, description="strong_electronic_identification: the e-ID transaction's reference")
    document_type: DocumentType | None = Field(default=None, description="in_person: the kind of document shown")
    registrant_id: uuid.UUID | None = None


class SendConfirmationAction(RequestModel):
    """Send a one-time confirmation link to an email address or phone number already in the register."""

    action: Literal["send_confirmation"]
    to: Literal["email", "phone"] = "email"
    registrant_id: uuid.UUID | None = Field(default=None, description="Link this registrant first")


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
    informed_at: Instant | None = Field(default=None, description="When; default now. Not before receipt, not "
                                                                   "in the future, within the first month")


class FeeGround(StrEnum):
    """The only grounds for a fee: further copies (Art. 15(3)) or a manifestly unfounded or excessive request
    (Art. 12(5)). The first copy is always free (CJEU C-307/22); a repeat is never charged for that alone."""

    further_copy = "further_copy"
    manifestly_unfounded_or_excessive = "manifestly_unfounded_or_excessive"


class Fee(RequestModel):
    """A reasonable fee based on administrative costs, with its lawful ground and the written reasons."""

    amount: Annotated[Decimal, Field(gt=0, le=10000, max_digits=8, decimal_places=2)]
    currency: Literal["EUR"] = "EUR"
    ground: FeeGround
    justification: Reason = Field(description="Why the fee is lawful, told to the person with the right to "
                                              "complain")


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
    person_informed: bool = Field(description="The person was told before the restriction is lifted (Art. 18(3))")
    informed_at: Instant | None = Field(default=None, description="When; default now")


class RejectAction(RequestModel):
    """Refuse the request, with the reason told to the person (and the right to complain)."""

    action: Literal["reject"]
    reason: Reason
    ground: Literal["manifestly_unfounded", "excessive", "identity_not_verified", "no_data", "other"] = "other"


class WithdrawAction(RequestModel):
    """The person withdrew the request."""

    action: Literal["withdraw"]
    reason: Text | None = None


Transition = Annotated[VerifyAction | SendConfirmationAction | LinkAction | StartAction | ExtendAction
                       | CompleteAction | RejectAction | WithdrawAction | LiftRestrictionAction,
                       Field(discriminator="action")]


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


class ConfirmationRead(ResponseModel):
    """The answer to a followed confirmation link."""

    confirmed: bool
    request_id: uuid.UUID
    status: RequestStatus

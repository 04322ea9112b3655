"""Request and response bodies of registrants, their history, records and statistics."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, EmailStr, Field

from app.auth.schemas import SystemName
from app.core import clock
from app.core.phone import Phone
from app.core.schemas import RequestModel, ResponseModel
from app.core.types import Day, Instant, JsonObject, Name, line

OrganisationName = line(300)
from app.core.validators import validate_business_id
from app.registrants.models import GuardianSource, RegistrantKind, RegistrantStatus

Kind = RegistrantKind
Language = Literal["fi", "sv", "en"]
Status = RegistrantStatus
RecordType = Literal["order", "invoice", "lesson", "meeting", "enrolment", "survey_answer", "feedback", "contact",
                     "other"]
ExternalId = line(200)
CustomerType = line(40, pattern=r"^[a-z][a-z0-9_-]{0,39}$")


Street = line(200)
PostalCode = line(20)
City = line(100)
Country = line(2, pattern=r"^[A-Z]{2}$")
Code = line(64, pattern=r"^[a-z][a-z0-9_]{0,63}$")


def _lower(value: str) -> str:
    return value.lower()


MAX_AGE = 120


def _plausible_birth(value: date | None) -> date | None:
    """A date of birth neither in the future nor more than 120 years ago."""
    if value is None:
        return value
    today = clock.utcnow().date()
    if value > today:
        raise ValueError("the date of birth is in the future")
    if value < today.replace(year=today.year - MAX_AGE, day=28 if (today.month, today.day) == (2, 29) else today.day):
        raise ValueError(f"the date of birth is more than {MAX_AGE} years ago")
    return value


Email = Annotated[EmailStr, AfterValidator(_lower)]
BusinessId = Annotated[str, AfterValidator(validate_business_id)]
BirthDate = Annotated[Day, AfterValidator(_plausible_birth)]


class Contact(RequestModel):
    """A person to contact: an organisation's contact person."""

    name: Name
    email: Email | None = None
    phone: Phone | None = None


class Address(RequestModel):
    """A postal address."""

    street: Street
    postal_code: PostalCode
    city: City
    country: Country = "FI"


class ExternalRef(RequestModel):
    """An identifier of the registrant in an external system (unique per system)."""

    system: SystemName
    id: ExternalId


class RegistrantFields(RequestModel):
    """The fields a client may set on a registrant (never status, version, id or times)."""

    given_name: Name | None = None
    family_name: Name | None = None
    date_of_birth: BirthDate | None = None
    birth_date_estimated: bool = Field(default=False, description=(
        "The date of birth is an estimate from an age (the latest day consistent with it)"))
    guardian_ids: list[uuid.UUID] = Field(default_factory=list, max_length=4, description=(
        "Registrant ids of the child's guardians (each a person of 18 or more); required under the profile's "
        "guardian age. A replace (PUT) adds the links it names; remove one with DELETE .../guardians/{id}"))
    name: OrganisationName | None = Field(
        default=None, description="The organisation's name")
    business_id: BusinessId | None = None
    contact_persons: list[Contact] = Field(default_factory=list, max_length=20)
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None
    language: Language = "fi"
    customer_types: list[CustomerType] = Field(default_factory=list, max_length=20)


class RegistrantUpsert(RegistrantFields):
    """A registrant as an external system knows it (`PUT /v1/registrants/by-ref/{system}/{id}`)."""

    kind: Kind


class RegistrantCreate(RegistrantUpsert):
    """A new registrant."""

    external_refs: list[ExternalRef] = Field(default_factory=list, max_length=20)


class RegistrantUpdate(RequestModel):
    """Changes to a registrant; only the fields sent are changed, null clears a field."""

    given_name: Name | None = None
    family_name: Name | None = None
    date_of_birth: BirthDate | None = None
    birth_date_estimated: bool | None = None
    name: OrganisationName | None = None
    business_id: BusinessId | None = None
    contact_persons: list[Contact] | None = Field(default=None, max_length=20)
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None
    language: Language | None = None
    customer_types: list[CustomerType] | None = Field(default=None, max_length=20)


class ExternalRefRead(ResponseModel):
    """An external reference."""

    system: str
    id: str


class GuardianLinkCreate(RequestModel):
    """Link a guardian (a registrant of 18 or more) to a child."""

    guardian_id: uuid.UUID


class GuardianLinkRead(ResponseModel):
    """A link between a child and a guardian, seen from either side."""

    registrant_id: uuid.UUID = Field(description="The guardian (in `guardians`) or the child (in `children`)")
    given_name: str | None = None
    family_name: str | None = None
    source: GuardianSource
    linked_at: datetime


class RegistrantRead(ResponseModel):
    """A registrant; `version` is also sent as the `ETag`."""

    id: uuid.UUID
    kind: Kind
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    birth_date_estimated: bool = False
    guardians: list[GuardianLinkRead] = Field(default_factory=list, description="A child's guardians")
    children: list[GuardianLinkRead] = Field(default_factory=list, description="The children a guardian acts for")
    name: str | None
    business_id: str | None
    contact_persons: list[dict[str, Any]]
    email: str | None
    phone: str | None
    address: dict[str, Any] | None
    language: Language
    customer_types: list[str]
    external_refs: list[ExternalRefRead]
    status: Status
    version: int
    attention: str | None = Field(default=None, description="Why staff should look at this registrant")
    created_at: datetime
    updated_at: datetime


class HistoryRead(ResponseModel):
    """One change of a registrant."""

    id: uuid.UUID
    version: int
    at: datetime
    action: str
    actor_type: str
    actor_id: str | None
    actor_name: str | None
    fields: list[str]
    changes: dict[str, Any] = Field(description="Per field: `{old, new}`")


class RecordCreate(RequestModel):
    """A customer-relationship record; the same source and external id is created once."""

    type: RecordType
    occurred_at: Instant
    ends_at: Instant | None = Field(default=None, description=(
        "When the contract, season or course this record starts ends: the customer relationship (and its retention "
        "period) runs at least until then"))
    source: SystemName | None = Field(default=None, description="Defaults to the calling integration's system")
    external_id: ExternalId | None = None
    data: JsonObject = Field(default_factory=dict, description="At most 16 KiB as JSON")
    data_category: Code | None = Field(
        default=None, description="Defaults by type")
    opt_out_offered: bool = Field(default=False, description=(
        "For a sale: the customer was given a clear, free and easy chance to refuse marketing when the contact was "
        "collected (917/2014 § 200(2) soft opt-in)"))


class RecordRead(ResponseModel):
    """A customer-relationship record."""

    id: uuid.UUID
    registrant_id: uuid.UUID
    type: RecordType
    occurred_at: datetime
    ends_at: datetime | None = None
    source: str
    external_id: str | None
    data: dict[str, Any]
    data_category: str
    opt_out_offered: bool = False
    created_at: datetime


class RegistrantStats(ResponseModel):
    """Counts of registrants (no personal data)."""

    total: int
    by_kind: dict[str, int]
    by_status: dict[str, int]
    by_customer_type: dict[str, int]

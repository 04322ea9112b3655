"""The register profile as a validated document, its versions, the statement and the Art. 30 record."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import isodate
from pydantic import AfterValidator, BeforeValidator, EmailStr, Field, ValidationInfo, field_validator

from app.core.schemas import RequestModel, ResponseModel
from app.core.types import check_json, line, text
from app.core.validators import validate_business_id

# EU member states, Iceland, Liechtenstein and Norway (the EEA), and "EU" for "within the EU/EEA".
EU_EEA = frozenset({"EU",
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
    "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
})
_DURATION_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)

Code = line(64, pattern=r"^[a-z][a-z0-9_]{0,63}$")
# The relationship record types (app.registrants.schemas.RecordType) that can be a sale.
SaleRecordType = Literal["order", "invoice", "lesson", "enrolment", "other"]
Text = text(4000)
ShortText = line(300)
Country = line(2, pattern=r"^[A-Z]{2}$")
PhoneText = line(20, pattern=r"^\+?[0-9 ()-]{5,20}$")


PostalCode = line(12, pattern=r"^[A-Z0-9 -]{2,12}$")
Website = line(300, pattern=r"^https://\S+$")
CallbackUrl = line(500, pattern=r"^https?://\S+$")


def duration_span(value: str) -> timedelta:
    """How long an ISO 8601 duration is, counted from a fixed date (months and years vary in length)."""
    parsed = isodate.parse_duration(value)
    return (_DURATION_ANCHOR + parsed) - _DURATION_ANCHOR


def _iso_duration(value: str) -> str:
    try:
        span = duration_span(value)
    except (isodate.ISO8601Error, ValueError, TypeError, OverflowError, ArithmeticError) as exc:
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as P6Y, P2M or P30D") from exc
    if span <= timedelta(0):
        raise ValueError(f"the duration {value!r} must be longer than zero")
    return value.upper()


IsoDuration = Annotated[line(40), AfterValidator(_iso_duration)]
BusinessId = Annotated[str, AfterValidator(validate_business_id)]


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) bases the register uses."""

    consent = "consent"
    contract = "contract"
    legitimate_interest = "legitimate_interest"
    legal_obligation = "legal_obligation"


class Channel(StrEnum):
    """How a purpose may reach a person."""

    email = "email"
    sms = "sms"
    phone = "phone"
    post = "post"


class RequestChannel(StrEnum):
    """How a data-subject request arrived; every channel is accepted (GDPR Art. 12(2), EDPB Guidelines 01/2022)."""

    email = "email"
    web_form = "web_form"
    phone = "phone"
    letter = "letter"
    in_person = "in_person"
    api = "api"
    other = "other"


class IdentityMethod(StrEnum):
    """How the identity of the person behind a request is verified (proportionately, EDPB Guidelines 01/2022)."""

    known_contact = "known_contact"
    strong_electronic_identification = "strong_electronic_identification"
    signed_letter = "signed_letter"
    in_person = "in_person"
    guardian = "guardian"


RIGHT_TYPES = ("access", "rectification", "erasure", "restriction", "portability", "objection")
# Methods that need neither paper nor a visit: the profile must accept one of them for every type, because
# the controller must facilitate the rights (Art. 12(2)) and may not demand a hand signature.
REMOTE_METHODS = frozenset({IdentityMethod.known_contact, IdentityMethod.strong_electronic_identification})
RightType = line(20, pattern="^(" + "|".join(RIGHT_TYPES) + ")$")


class RecipientRole(StrEnum):
    """What a recipient is to the controller."""

    processor = "processor"
    recipient = "recipient"
    internal = "internal"


class Safeguard(StrEnum):
    """GDPR chapter V grounds for a transfer outside the EU/EEA."""

    adequacy_decision = "adequacy_decision"
    eu_us_data_privacy_framework = "eu_us_data_privacy_framework"
    standard_contractual_clauses = "standard_contractual_clauses"
    binding_corporate_rules = "binding_corporate_rules"
    art49_derogation = "art49_derogation"


def _refuse_privacy_shield(value: Any) -> Any:
    if isinstance(value, str) and re.sub(r"[^a-z]", "", value.lower()) in {"privacyshield", "euusprivacyshield"}:
        raise ValueError(
            "the EU-US Privacy Shield is no longer a valid transfer safeguard: the CJEU invalidated it on "
            "16 July 2020 (C-311/18, Schrems II); use eu_us_data_privacy_framework for certified US recipients "
            "or standard_contractual_clauses")
    return value


class LocalizedText(RequestModel):
    """A text in Finnish and English."""

    fi: Text
    en: Text


class NoticeText(RequestModel):
    """A short text in the three languages notices are sent in."""

    fi: ShortText
    en: ShortText
    sv: ShortText


class PostalAddress(RequestModel):
    """A postal address."""

    street: ShortText
    postal_code: PostalCode
    city: ShortText
    country: Country = "FI"


class Contact(RequestModel):
    """Whom to contact about the register."""

    name: ShortText | None = None
    email: EmailStr | None = None
    phone: PhoneText | None = None
    address: PostalAddress | None = None


class Controller(RequestModel):
    """The controller (rekisterinpitäjä)."""

    name: ShortText
    trade_names: list[ShortText] = Field(default_factory=list, max_length=10)
    business_id: BusinessId
    address: PostalAddress | None = None
    phone: PhoneText | None = None
    email: EmailStr | None = None
    website: Website | None = None
    register_contact: Contact


class Purpose(RequestModel):
    """Why personal data is processed; consents and objections name it by code."""

    code: Code
    name: LocalizedText
    description: LocalizedText | None = None
    legal_basis: LegalBasis
    channels: list[Channel] = Field(default_factory=list, max_length=4)
    objectable: bool = False
    # Direct marketing (GDPR Art. 21(2)-(3)): one objection to any such purpose ends them all, on every channel.
    direct_marketing: bool = False
    data_categories: list[Code] = Field(default_factory=list, max_length=50)
    # A retired purpose stays in the profile for the consents that name it, but takes no new grants.
    retired: bool = False
    # 917/2014 § 200(2) soft opt-in: the purpose markets only the controller's own similar products or services, so
    # email and SMS may reach a customer whose contact came with a sale (refused on other purposes).
    soft_opt_in: bool = Field(default=False, validate_default=True)

    @field_validator("soft_opt_in")
    @classmethod
    def _soft_opt_in_is_marketing(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("direct_marketing"):
            raise ValueError("soft_opt_in (917/2014 § 200(2)) applies only to a direct-marketing purpose")
        return value


class StartEvent(StrEnum):
    """What a retention period is counted from (the statement names it in fi/en/sv)."""

    relationship_end = "relationship_end"  # the later of the last sale or lesson and the end of the last contract
    last_use = "last_use"
    collected = "collected"
    course_end = "course_end"
    # Kirjanpitolaki 1336/1997 2:10 §: vouchers from the end of the year in which the financial period ended,
    # the books from the end of the financial period itself.
    financial_year_end = "financial_year_end"
    financial_period_end = "financial_period_end"
    withdrawal = "withdrawal"  # a consent withdrawn, or an objection whose person is no longer in the register
    joining = "joining"
    leaving = "leaving"
    completion = "completion"
    deactivation = "deactivation"


class DataCategory(RequestModel):
    """A kind of personal data, with how long it is kept."""

    code: Code
    name: LocalizedText
    description: LocalizedText | None = None
    data_subjects: list[Code] = Field(default_factory=list, max_length=20)
    retention: IsoDuration
    retention_trigger: LocalizedText | None = None
    # Which start event the period counts from, where the category's rule offers a choice (e.g. a waitlist
    # entry's joining or leaving); None: the rule's own.
    retention_start: StartEvent | None = None
    legal_basis: LegalBasis
    # For legal_obligation: the statute and the shortest period it requires; purge never goes below it.
    statute: ShortText | None = None
    minimum_retention: IsoDuration | None = Field(default=None, validate_default=True)

    @field_validator("minimum_retention")
    @classmethod
    def _not_shorter_than_minimum(cls, value: str | None, info: ValidationInfo) -> str | None:
        retention = info.data.get("retention")
        if value and retention and duration_span(retention) < duration_span(value):
            raise ValueError(f"retention {retention} is shorter than the {value} the law requires")
        return value


class DataSubjectCategory(RequestModel):
    """A group of people whose data the register holds."""

    code: Code
    name: LocalizedText


class Recipient(RequestModel):
    """Someone data is disclosed to, or a processor handling it; location is an ISO 3166 code or "EU"."""

    name: ShortText
    role: RecipientRole
    purpose: LocalizedText
    location: Country
    data_categories: list[Code] = Field(default_factory=list, max_length=50)
    safeguard: Annotated[Safeguard | None, BeforeValidator(_refuse_privacy_shield)] = Field(
        default=None, validate_default=True)
    safeguard_note: LocalizedText | None = None
    # Where Art. 19 notices of rectification, erasure and restriction are posted (signed), if the recipient
    # takes them by machine; the others are told by the controller by other means.
    callback_url: CallbackUrl | None = None

    @field_validator("safeguard")
    @classmethod
    def _third_country_needs_safeguard(cls, value: Safeguard | None, info: ValidationInfo) -> Safeguard | None:
        location = info.data.get("location")
        if location and location not in EU_EEA and value is None:
            raise ValueError(f"a recipient in {location}, outside the EU/EEA, needs a transfer safeguard")
        return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Helsinki") from exc
    return value


def _holiday_country(value: str) -> str:
    if value not in holidays.list_supported_countries():
        raise ValueError(f"no public-holiday calendar for {value!r}; an ISO 3166 code such as FI")
    return value


def within_months(value: str, limit: int) -> bool:
    """Whether an ISO 8601 duration is at most `limit` calendar months from any start day.

    Counted in days, a month is only sure to hold 28 of them (February), so P30D is longer than P1M.
    """
    parsed = isodate.parse_duration(value)
    months = int(parsed.years * 12 + parsed.months) if isinstance(parsed, isodate.Duration) else 0
    rest = parsed.tdelta if isinstance(parsed, isodate.Duration) else parsed
    if rest <= timedelta(0):
        return months <= limit
    return months + -(-rest // timedelta(days=28)) <= limit


def _response_time(value: str) -> str:
    if not within_months(value, 1):
        raise ValueError(f"GDPR Art. 12(3): a request is answered within one month of receipt; {value} is longer "
                         "(at most P1M, or P28D counted in days)")
    return value


def _extension(value: str) -> str:
    if not within_months(value, 2):
        raise ValueError(f"GDPR Art. 12(3): the one extension is at most two further months; {value} is longer "
                         "(at most P2M, or P56D counted in days)")
    return value


# GDPR Art. 8(1): a member state may set the age of a child's own consent between 13 and 16; Finland set 13
# (Tietosuojalaki 1050/2018 5 §).
GUARDIAN_AGE_FI = 13
GUARDIAN_AGE_RANGE = (13, 16)


class RightsPolicy(RequestModel):
    """How the controller answers data-subject requests, within the limits the law sets (GDPR Art. 8(1), 12(3))."""

    # Only flags a repeat: a fee is never charged for repetition alone, only on the grounds of Art. 12(5) or
    # 15(3), recorded with the request's completion (app.subject_requests.service._fee).
    free_access_interval_months: int = Field(default=12, ge=0, le=120)
    response_time: Annotated[IsoDuration, AfterValidator(_response_time)] = "P1M"
    extension: Annotated[IsoDuration, AfterValidator(_extension)] = "P2M"
    # The channels the statement advertises; a request by any other channel is still accepted and flagged.
    request_channels: list[RequestChannel] = Field(min_length=1, max_length=7)
    # Kept so older profiles load; a hand signature is never demanded (EDPB Guidelines 01/2022), so it
    # no longer blocks the verification of an unsigned letter.
    signature_required: bool = False
    # Which identity methods suffice for each request type; types not named accept every method.
    identity_methods: Annotated[dict[RightType, list[IdentityMethod]], AfterValidator(check_json)] = Field(
        default_factory=dict)
    # The calendar deadlines are counted on (Regulation 1182/71 Art. 2 and 3): a zone and a holiday country.
    time_zone: Annotated[line(64), AfterValidator(_time_zone)] = "Europe/Helsinki"
    holidays: Annotated[line(2, pattern=r"^[A-Z]{2}$"), AfterValidator(_holiday_country)] = "FI"
    # Whose national law sets the age under which a guardian acts for the child (GDPR Art. 8(1)).
    law_country: Country = "FI"
    guardian_age: int = Field(default=GUARDIAN_AGE_FI, ge=0, le=18, validate_default=True)
    instructions: LocalizedText | None = None

    @field_validator("guardian_age")
    @classmethod
    def _lawful_guardian_age(cls, value: int, info: ValidationInfo) -> int:
        country = info.data.get("law_country")
        if country == "FI" and value != GUARDIAN_AGE_FI:
            raise ValueError(f"Tietosuojalaki 1050/2018 5 §: in Finland the age is {GUARDIAN_AGE_FI}, not {value}")
        low, high = GUARDIAN_AGE_RANGE
        if country and not low <= value <= high:
            raise ValueError(f"GDPR Art. 8(1): a member state sets the age between {low} and {high}, not {value}")
        return value

    @field_validator("identity_methods")
    @classmethod
    def _proportionate(cls, value: dict[str, list[IdentityMethod]]) -> dict[str, list[IdentityMethod]]:
        for type_, methods in value.items():
            if not REMOTE_METHODS & set(methods):
                raise ValueError(f"{type_} requests must accept known_contact or strong_electronic_identification: "
                                 "a signature or a visit may not be the only way (GDPR Art. 12(2))")
        return value

    def methods_for(self, request_type: str) -> list[IdentityMethod]:
        """The identity methods that suffice for a request type."""
        return self.identity_methods.get(request_type) or list(IdentityMethod)


def _month_day(value: str) -> str:
    month, day = (int(part) for part in value.split("-"))
    try:
        date(2001, month, day)  # a common year: 29 February is not the last day of every period
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a day of every year (MM-DD, e.g. 12-31 or 04-30)") from exc
    return value


def _unique_codes(items: list[Any], what: str) -> list[Any]:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.code in seen:
            raise ValueError(f"duplicate {what} code {item.code!r} at index {index}")
        seen.add(item.code)
    return items


def _known_references(items: list[Any], attribute: str, targets: list[Any] | None, what: str) -> None:
    known = {target.code for target in targets or []}
    for item in items:
        unknown = sorted(set(getattr(item, attribute)) - known)
        if unknown:
            raise ValueError(f"{getattr(item, 'code', None) or item.name!r} names unknown {what} {unknown}")


class RegisterProfile(RequestModel):
    """Everything a privacy statement says, as data: the whole profile is validated before it is stored."""

    controller: Controller
    register_name: LocalizedText
    legal_basis_note: LocalizedText | None = None
    data_subjects: list[DataSubjectCategory] = Field(min_length=1, max_length=20)
    data_categories: list[DataCategory] = Field(min_length=1, max_length=50)
    purposes: list[Purpose] = Field(min_length=1, max_length=100)
    sources: list[LocalizedText] = Field(min_length=1, max_length=20)
    recipients: list[Recipient] = Field(default_factory=list, max_length=50)
    disclosure_note: LocalizedText | None = None
    security_measures: list[LocalizedText] = Field(min_length=1, max_length=30)
    cookies: LocalizedText | None = None
    rights_policy: RightsPolicy
    # Why the profile departs from its source statement, where that statement contradicts itself or the law.
    notes: list[Text] = Field(default_factory=list, max_length=30)
    # Relationship record types that are a sale by this controller (917/2014 § 200(2) soft opt-in).
    sale_record_types: list[SaleRecordType] = Field(default_factory=list, max_length=9)
    # The waitlist's name in its notices and unsubscribe page (e.g. "UniikkiLista"); default: the purpose's name.
    waitlist_name: NoticeText | None = None
    # The last day of the financial period (tilikausi), MM-DD: Kirjanpitolaki 1336/1997 2:10 § counts the
    # accounting material's periods from it.
    financial_period_end: Annotated[line(5, pattern=r"^[01][0-9]-[0-3][0-9]$"),
                                    AfterValidator(_month_day)] = "12-31"

    @field_validator("data_subjects")
    @classmethod
    def _unique_subjects(cls, value: list[DataSubjectCategory]) -> list[DataSubjectCategory]:
        return _unique_codes(value, "data subject")

    @field_validator("data_categories")
    @classmethod
    def _unique_categories(cls, value: list[DataCategory], info: ValidationInfo) -> list[DataCategory]:
        _known_references(value, "data_subjects", info.data.get("data_subjects"), "data subjects")
        return _unique_codes(value, "data category")

    @field_validator("purposes", "recipients")
    @classmethod
    def _known_categories(cls, value: list[Any], info: ValidationInfo) -> list[Any]:
        _known_references(value, "data_categories", info.data.get("data_categories"), "data categories")
        return _unique_codes(value, "purpose") if info.field_name == "purposes" else value

    def purpose(self, code: str) -> Purpose | None:
        """The purpose with this code, if any."""
        return next((p for p in self.purposes if p.code == code), None)

    def category(self, code: str) -> DataCategory | None:
        """The data category with this code, if any."""
        return next((c for c in self.data_categories if c.code == code), None)


class RegisterVersionSummary(ResponseModel):
    """A version of the profile without its content."""

    number: int
    created_at: datetime
    created_by: str | None = None
    created_by_name: str | None = None


class RegisterVersionRead(RegisterVersionSummary):
    """A version of the profile with its content."""

    profile: RegisterProfile


class StatementSection(ResponseModel):
    """One numbered section of the privacy statement."""

    key: str
    heading: str
    paragraphs: list[str] = Field(default_factory=list)
    items: list[str] = Field(default_factory=list)


class StatementRead(ResponseModel):
    """The privacy statement as structured data (`format=json`)."""

    lang: str
    title: str
    version: int
    updated_at: datetime
    law: str
    sections: list[StatementSection]


class MarketingChannels(ResponseModel):
    """For a direct-marketing purpose, what each channel rests on (917/2014 §§ 200-201)."""

    consent_required: list[Channel] = Field(description="Channels that need the person's prior consent (§ 200(1))")
    soft_opt_in: list[Channel] = Field(description="Channels open to customers from a sale (§ 200(2))")
    unless_refused: list[Channel] = Field(description="Channels allowed unless the person refused (§ 200(3))")
    organisations_unless_refused: list[Channel] = Field(description="Legal persons' addresses (§ 201)")


class RopaPurpose(ResponseModel):
    """Art. 30(1)(b): a purpose of the processing."""

    code: str
    name: LocalizedText
    legal_basis: LegalBasis
    retired: bool
    direct_marketing: bool = False
    # consent: the person stops it by withdrawing (Art. 7(3)); otherwise by objecting (Art. 21), where objectable.
    how_to_stop: Literal["withdrawal", "objection", "none"] = "none"
    marketing_channels: MarketingChannels | None = None


class RopaCategory(ResponseModel):
    """Art. 30(1)(c) and (f): a category of personal data, its data subjects, tables and erasure time limit."""

    code: str
    name: LocalizedText
    data_subjects: list[str]
    tables: list[str]
    retention: str
    # (f): what the period is counted from, and the period in words, as the retention rule enforces it.
    start_event: StartEvent | None = None
    retention_words: dict[str, str] = Field(default_factory=dict)
    legal_basis: LegalBasis
    statute: str | None = None


class RopaRecipient(ResponseModel):
    """Art. 30(1)(d) and (e): a recipient, its country, and for a third country the safeguard."""

    name: str
    role: RecipientRole
    location: str
    third_country: bool
    safeguard: Safeguard | None = None


class RopaRead(ResponseModel):
    """The record of processing activities of GDPR Art. 30(1), (a) to (g)."""

    version: int
    updated_at: datetime
    a_controller: Controller
    b_purposes: list[RopaPurpose]
    c_data_subjects: list[DataSubjectCategory]
    c_data_categories: list[RopaCategory]
    d_recipients: list[RopaRecipient]
    e_third_country_transfers: list[RopaRecipient]
    f_erasure_time_limits: dict[str, str]
    g_security_measures: list[LocalizedText]

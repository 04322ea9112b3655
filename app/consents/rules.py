"""Who may be contacted for a purpose on a channel, and on which basis: one pure function.

The law it applies, on top of the purpose's GDPR Art. 6(1) legal basis:

- Laki sähköisen viestinnän palveluista (917/2014) § 200: direct marketing to a natural person by email,
  SMS/MMS, voice message or automated call needs the person's prior consent. Exception (soft opt-in, § 200(2)):
  the seller that got the address from its own customer in connection with a sale may market its own similar
  products to it, if the customer was given a clear, free and easy chance to refuse when the contact was collected
  and is given one in every message. Other means (a call by a person, addressed post) are allowed unless the person
  has refused (§ 200(3)).
- § 201: direct marketing to a legal person's addresses is allowed unless it has refused.
- § 202: every message identifies the sender and carries a working way to stop (the opt-out link of each row).
- GDPR Art. 21(2)-(3): an objection to direct marketing is absolute (the ledger's derivation spreads it to every
  direct-marketing purpose and channel). Art. 7(3): a withdrawal ends the consent.
- GDPR Art. 8 and Tietosuojalaki (1050/2018) § 5: a child under the profile's guardian age does not consent alone;
  for direct marketing and consent-based purposes a child is included only on a grant given by the guardian.

The function reads facts only; it never touches the database, so the audience query, the effective state of
`GET /v1/registrants/{id}/consents` and `?explain=true` all decide with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from app.consents.state import State
from app.registrants.models import RegistrantKind, RegistrantStatus

ELECTRONIC = frozenset({"email", "sms"})


class Basis(StrEnum):
    """Why someone is in an audience."""

    consent = "consent"
    soft_opt_in = "soft_opt_in"
    business_opt_out = "business_opt_out"
    objection_regime = "objection_regime"
    contract = "contract"
    legitimate_interest = "legitimate_interest"
    legal_obligation = "legal_obligation"


class Reason(StrEnum):
    """Why someone is left out (or, for `admitted`, that they are not)."""

    admitted = "admitted"
    not_active = "not_active"
    objected = "objected"
    withdrawn = "withdrawn"
    no_consent = "no_consent"
    child_without_guardian_grant = "child_without_guardian_grant"
    no_contact = "no_contact"


@dataclass(frozen=True, slots=True)
class PurposeRule:
    """What the profile says about one purpose and channel."""

    channel: str
    legal_basis: str
    direct_marketing: bool
    soft_opt_in: bool


@dataclass(frozen=True, slots=True)
class Subject:
    """What is known about one registrant for one purpose and channel."""

    kind: str  # person | organisation
    status: str  # active | restricted | erased
    date_of_birth: date | None
    # The ledger's derived state for this purpose and channel, and who gave the event that decided it.
    state: State
    given_by: str | None
    # A relationship record of a sale type of the profile, marked `opt_out_offered` (soft opt-in (a) and (c)).
    sale_with_opt_out: bool
    has_contact: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    """In or out, on which basis, and why."""

    admitted: bool
    basis: Basis | None
    reason: Reason


def _out(reason: Reason) -> Verdict:
    return Verdict(False, None, reason)


def _in(basis: Basis) -> Verdict:
    return Verdict(True, basis, Reason.admitted)


def age_on(born: date, today: date) -> int:
    """Full years from a date of birth to a day."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def is_child(subject: Subject, *, today: date, guardian_age: int) -> bool:
    """A person under the guardian age on the evaluation day (no date of birth: not known to be a child)."""
    return (subject.kind == RegistrantKind.person and subject.date_of_birth is not None
            and age_on(subject.date_of_birth, today) < guardian_age)


def decide(subject: Subject, rule: PurposeRule, *, today: date, guardian_age: int) -> Verdict:
    """Whether the subject is in the audience of the purpose on the channel, and on which basis."""
    if subject.status != RegistrantStatus.active:
        return _out(Reason.not_active)
    if subject.state is State.objected:
        return _out(Reason.objected)
    granted = subject.state is State.granted
    consent_based = rule.legal_basis == "consent"
    if is_child(subject, today=today, guardian_age=guardian_age) and (rule.direct_marketing or consent_based):
        # Art. 8 / Tietosuojalaki § 5: only the guardian's grant counts; soft opt-in and opt-out regimes do not.
        if not (granted and subject.given_by == "guardian"):
            return _out(Reason.child_without_guardian_grant)
        return _with_contact(subject, _in(Basis.consent))
    if subject.state is State.withdrawn and (consent_based or rule.direct_marketing):
        return _out(Reason.withdrawn)
    if consent_based:
        return _with_contact(subject, _in(Basis.consent) if granted else _out(Reason.no_consent))
    if not rule.direct_marketing:
        return _with_contact(subject, _in(Basis(rule.legal_basis)))
    return _with_contact(subject, _marketing(subject, rule, granted))


def _marketing(subject: Subject, rule: PurposeRule, granted: bool) -> Verdict:
    """§§ 200-201 for a direct-marketing purpose whose GDPR basis is not consent."""
    if granted:
        return _in(Basis.consent)
    if subject.kind == RegistrantKind.organisation:
        return _in(Basis.business_opt_out)
    if rule.channel not in ELECTRONIC:
        return _in(Basis.objection_regime)
    if rule.soft_opt_in and subject.sale_with_opt_out:
        return _in(Basis.soft_opt_in)
    return _out(Reason.no_consent)


def _with_contact(subject: Subject, verdict: Verdict) -> Verdict:
    """Nobody is in an audience without an address for the channel."""
    if verdict.admitted and not subject.has_contact:
        return _out(Reason.no_contact)
    return verdict

"""Rules of the ledger: what may be granted, withdrawn or objected to, by whom; state, receipts, audiences."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial
from datetime import date
from typing import Any

from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principal import Principal, PrincipalKind
from app.consents import repository as repo
from app.consents.optout import ONE_CLICK, list_unsubscribe, make_token, optout_link, read_token, token_hash
from app.consents.rules import Basis, PurposeRule, Reason, Subject, Verdict, decide, is_child
from app.consents.schemas import (
    AudienceExplanation,
    AudienceFacts,
    ChannelState,
    ConsentEventCreate,
    ConsentEventRead,
    ConsentEventWithReceipt,
    ConsentReceipt,
    ConsentStateRead,
    ConsentStats,
    Evidence,
    OptedOut,
    ReceiptController,
    ReceiptPurpose,
    ReceiptService,
    Source,
)
from app.consents.state import Action, Decision, State, derive
from app.core import clock
from app.core.errors import Invalid, NotFound
from app.db.pagination import Page, PageParams, encode_cursor
from app.db.repository import dialect_name
from app.register import service as register
from app.register.schemas import LegalBasis, Purpose, RegisterProfile
from app.registrants import service as registrants
from app.registrants import guardians
from app.registrants import repository as registrants_repo
from app.registrants.models import RegistrantKind
from app.registrants.models import RegistrantStatus

_NOT_FOUND = "no such registrant"


def _channels(profile: RegisterProfile) -> dict[str, list[str]]:
    return {p.code: [c.value for c in p.channels] for p in profile.purposes}


def _direct_marketing(profile: RegisterProfile) -> frozenset[str]:
    return frozenset(p.code for p in profile.purposes if p.direct_marketing)


async def _profile(session: AsyncSession) -> tuple[int, RegisterProfile]:
    current = await register.current_version(session)
    if current is None:
        raise Invalid("no register profile has been written yet, so no purpose exists", loc=["body", "purpose"])
    return current


async def _registrant(session: AsyncSession, actor: Principal, registrant_id: uuid.UUID, *,
                      for_update: bool = False) -> RowMapping:
    # Only the registrant's own columns: the consent rules need no references, types or links (one read less work).
    row = await registrants.visible_registrant(session, actor=actor, registrant_id=registrant_id,
                                               for_update=for_update, extras=False)
    if row["status"] == RegistrantStatus.erased:
        raise NotFound(_NOT_FOUND)
    return row


def _check_purpose(purpose: Purpose | None, data: ConsentEventCreate) -> Purpose:
    if purpose is None:
        raise Invalid(f"unknown purpose code {data.purpose!r}", loc=["body", "purpose"])
    if data.channel is not None and data.channel not in purpose.channels:
        allowed = ", ".join(c.value for c in purpose.channels) or "none"
        raise Invalid(f"purpose {purpose.code!r} does not use the channel {data.channel.value!r} (it uses: {allowed})",
                      loc=["body", "channel"])
    # A direct-marketing purpose takes consents whatever its GDPR basis: there the consent is the permission that
    # 917/2014 § 200(1) requires for email and SMS to persons.
    consentable = purpose.legal_basis is LegalBasis.consent or purpose.direct_marketing
    if data.action in (Action.grant, Action.withdraw) and not consentable:
        raise Invalid(f"purpose {purpose.code!r} rests on {purpose.legal_basis.value}, not consent: such a purpose "
                      "needs no consent (to stop it, object instead where it is objectable)", loc=["body", "action"])
    if data.action is Action.grant and purpose.retired:
        raise Invalid(f"purpose {purpose.code!r} is retired and takes no new consents", loc=["body", "purpose"])
    if data.action is Action.object and not purpose.objectable:
        raise Invalid(f"purpose {purpose.code!r} is not one a person can object to", loc=["body", "action"])
    return purpose


async def _given_by(session: AsyncSession, row: RowMapping, data: ConsentEventCreate) -> tuple[str, str | None]:
    """Who expressed it, as the caller says; nothing is inferred (GDPR Art. 8, 7(3), 21; Tietosuojalaki § 5).

    A child under the guardian age consents only through a linked guardian; the child's own withdrawal or
    objection is always accepted. A guardian acts only while linked. Returns (given_by, guardian id).
    """
    evidence = data.evidence
    born: date | None = row["date_of_birth"]
    age = guardians.age_today(born) if row["kind"] == RegistrantKind.person else None
    child = age is not None and age < guardians.MAJORITY
    if evidence.given_by == "guardian" or evidence.guardian_id is not None:
        linked = await registrants_repo.guardian_ids(session, child_id=row["id"])
        if evidence.given_by != "guardian":
            raise Invalid("a guardian_id goes with given_by: guardian", loc=["body", "evidence", "given_by"])
        if evidence.guardian_id is None or evidence.guardian_id not in linked:
            named = "none is linked" if not linked else "linked: " + ", ".join(str(g) for g in linked)
            raise Invalid(f"given_by guardian needs the guardian_id of a guardian linked to this registrant ({named})",
                          loc=["body", "evidence", "guardian_id"])
        return "guardian", str(evidence.guardian_id)
    if data.action is not Action.grant:
        # Always accepted, at once (Art. 7(3), 21); for a child a link or unsubscribe does not say who used it.
        return evidence.given_by or ("unknown" if child else "self"), None
    if age is not None and age < await register.guardian_age(session):
        linked = await registrants_repo.guardian_ids(session, child_id=row["id"])
        named = ", ".join(str(g) for g in linked) or "none is linked yet"
        raise Invalid(f"the registrant is a child under the guardian age: a grant needs given_by guardian and the "
                      f"guardian_id of a linked guardian ({named})", loc=["body", "evidence", "guardian_id"])
    return "self", None


async def record_event(
    session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID, data: ConsentEventCreate, policy_url: str
) -> ConsentEventWithReceipt:
    """Append a grant, withdrawal or objection and re-derive the registrant's state in the same transaction."""
    now = clock.utcnow()
    if data.evidence.collected_at is not None and data.evidence.collected_at > now:
        raise Invalid("the evidence cannot be collected in the future", loc=["body", "evidence", "collected_at"])
    version, profile = await _profile(session)
    purpose = _check_purpose(profile.purpose(data.purpose), data)
    # Lock the registrant so concurrent events of one person are derived one after the other.
    row = await _registrant(session, actor, registrant_id, for_update=True)
    given_by, _guardian = await _given_by(session, row, data)
    evidence = data.evidence.model_dump(mode="json", exclude_none=True)
    evidence["given_by"] = given_by
    values = {
        "id": uuid.uuid4(), "registrant_id": registrant_id, "purpose": purpose.code,
        "channel": data.channel.value if data.channel else None, "action": data.action.value,
        "source": data.source.value, "evidence": evidence, "given_by": given_by,
        "effective_at": data.evidence.collected_at or now, "recorded_at": now, "recorded_by": actor.subject,
        "recorded_by_name": actor.name, "profile_version": version,
    }
    await repo.insert_event(session, values=values)
    await _rederive(session, registrant_id=registrant_id, profile=profile)
    audit.record(session, actor=actor, action=f"consent.{data.action.value}", resource_type="consent_event",
                 resource_id=values["id"], registrant_ids=[registrant_id],
                 details={"purpose": purpose.code, "channel": values["channel"], "source": data.source.value})
    event = ConsentEventRead.model_validate(values)
    return ConsentEventWithReceipt(**event.model_dump(), receipt=_receipt(event, profile, policy_url))


async def _rederive(session: AsyncSession, *, registrant_id: uuid.UUID, profile: RegisterProfile) -> None:
    ledger = await repo.ledger_of(session, registrant_id=registrant_id)
    decisions = derive(ledger, channels=_channels(profile), direct_marketing=_direct_marketing(profile))
    await repo.replace_state(session, registrant_id=registrant_id, decisions=decisions, now=clock.utcnow())


async def derived_state(session: AsyncSession, *, registrant_id: uuid.UUID) -> dict[tuple[str, str], Decision]:
    """The state recomputed from the ledger alone (what the stored state must always equal)."""
    _, profile = await _profile(session)
    ledger = await repo.ledger_of(session, registrant_id=registrant_id)
    return derive(ledger, channels=_channels(profile), direct_marketing=_direct_marketing(profile))


async def current_state(
    session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID, history: bool
) -> ConsentStateRead:
    """Per purpose and channel of the profile: the effective state, the ledger's state, and the audience's verdict."""
    row = await _registrant(session, actor, registrant_id)
    current = await register.current_version(session)
    profile = current[1] if current else None
    stored = {(r["purpose"], r["channel"]): r for r in await repo.states_with_givers(session, registrant_id=registrant_id)}
    pairs = [(p.code, c.value) for p in profile.purposes for c in p.channels] if profile else []
    pairs += sorted(set(stored) - set(pairs))
    sale = await repo.has_sale_with_opt_out(session, registrant_id=registrant_id,
                                            sale_types=profile.sale_record_types if profile else [])
    guardian_age, today = await register.guardian_age(session), clock.utcnow().date()
    states = []
    for purpose_code, channel in pairs:
        decided = stored.get((purpose_code, channel))
        ledger = State(decided["state"]) if decided else State.none
        subject = Subject(kind=row["kind"], status=row["status"], date_of_birth=row["date_of_birth"], state=ledger,
                          given_by=decided["given_by"] if decided else None, sale_with_opt_out=sale)
        purpose = profile.purpose(purpose_code) if profile else None
        verdict = decide(subject, purpose_rule(purpose, channel), today=today, guardian_age=guardian_age) \
            if purpose else Verdict(False, None, Reason.no_consent)
        effective = State.none if ledger is State.granted and verdict.basis is not Basis.consent else ledger
        states.append(ChannelState(purpose=purpose_code, channel=channel, state=effective, ledger_state=ledger,
                                   event_id=decided["event_id"] if decided else None, in_audience=verdict.admitted,
                                   basis=verdict.basis, reason=verdict.reason))
    ledger_events = None
    if history:
        ledger_events = [ConsentEventRead.model_validate(e)
                         for e in await repo.events_of(session, registrant_id=registrant_id)]
    audit.record(session, actor=actor, action="consent.read", resource_type="registrant", resource_id=registrant_id,
                 registrant_ids=[registrant_id], details={"history": history})
    return ConsentStateRead(registrant_id=registrant_id, states=states, history=ledger_events)


def purpose_rule(purpose: Purpose, channel: str) -> PurposeRule:
    """What the rule engine needs to know of a purpose of the profile."""
    return PurposeRule(channel=channel, legal_basis=purpose.legal_basis.value, direct_marketing=purpose.direct_marketing,
                       soft_opt_in=purpose.soft_opt_in)


async def receipt(session: AsyncSession, *, actor: Principal, event_id: uuid.UUID, policy_url: str) -> ConsentReceipt:
    """The receipt of an event, rebuilt from the profile version it was recorded under."""
    row = await repo.event_by_id(session, event_id=event_id)
    if row is None:
        raise NotFound("no such consent event")
    await _registrant(session, actor, row["registrant_id"])
    version = await register.get_version(session, number=row["profile_version"]) if row["profile_version"] else None
    profile = version.profile if version else (await _profile(session))[1]
    audit.record(session, actor=actor, action="consent.receipt", resource_type="consent_event", resource_id=event_id,
                 registrant_ids=[row["registrant_id"]])
    return _receipt(ConsentEventRead.model_validate(row), profile, policy_url)


def _receipt(event: ConsentEventRead, profile: RegisterProfile, policy_url: str) -> ConsentReceipt:
    """Kantara Consent Receipt v1.1 for one event."""
    purpose = profile.purpose(event.purpose)
    controller = profile.controller
    address = controller.address.model_dump() if controller.address else None
    categories = [c.name.en for code in (purpose.data_categories if purpose else []) if (c := profile.category(code))]
    disclosed = [r.name for r in profile.recipients
                 if purpose and set(r.data_categories) & set(purpose.data_categories) and r.role.value != "internal"]
    return ConsentReceipt(
        jurisdiction="FI",
        consentTimestamp=int(event.effective_at.timestamp()),
        collectionMethod=event.source + (" (by the guardian)" if event.given_by == "guardian" else ""),
        consentReceiptID=str(event.id),
        language="fi",
        piiPrincipalId=str(event.registrant_id),
        piiControllers=[ReceiptController(
            piiController=controller.name, contact=controller.register_contact.name or controller.name,
            address=address, email=str(controller.register_contact.email or controller.email or "") or None,
            phone=controller.register_contact.phone or controller.phone)],
        policyUrl=policy_url,
        services=[ReceiptService(service=profile.register_name.en, purposes=[ReceiptPurpose(
            purpose=purpose.name.en if purpose else event.purpose,
            purposeCategory=[event.purpose],
            consentType="EXPLICIT" if purpose and (purpose.legal_basis is LegalBasis.consent or (
                purpose.direct_marketing and event.action != Action.object)) else "NOT_REQUIRED",
            piiCategory=categories,
            primaryPurpose=True,
            termination="until withdrawn; withdrawing is as easy as granting (GDPR Art. 7(3))",
            thirdPartyDisclosure=bool(disclosed),
            thirdPartyName=", ".join(disclosed) or None,
        )])],
        action=event.action,
        channel=event.channel,
    )


def _audience_purpose(profile: RegisterProfile, purpose_code: str, channel: str) -> Purpose:
    """The purpose an audience is asked for; 422 naming the query parameter."""
    purpose = profile.purpose(purpose_code)
    if purpose is None or purpose.retired:
        raise Invalid(f"unknown or retired purpose {purpose_code!r}", loc=["query", "purpose"])
    if channel not in purpose.channels:
        raise Invalid(f"purpose {purpose_code!r} does not use the channel {channel!r}", loc=["query", "channel"])
    return purpose


def _subject(row: Row[Any]) -> Subject:
    """The engine's facts from one candidate row."""
    return Subject(kind=row.kind, status=row.status, date_of_birth=row.date_of_birth,
                   state=State(row.state) if row.state else State.none, given_by=row.given_by,
                   sale_with_opt_out=bool(row.sale_with_opt_out), has_contact=row.contact is not None)


@dataclass(frozen=True, slots=True)
class Links:
    """How the opt-out link of each row is made."""

    base_url: str
    key: bytes


def stoppable(purpose: Purpose) -> bool:
    """Whether a person can stop the purpose themselves: by withdrawing a consent or by objecting."""
    return purpose.legal_basis is LegalBasis.consent or purpose.direct_marketing or purpose.objectable


def _member(row: Row[Any], verdict: Verdict, *, purpose: str, channel: str, link: str | None,
            key: bytes) -> dict[str, Any]:
    """One audience row as `AudienceMember` JSON: the channel's address, the basis, the personal opt-out and headers.

    A plain dict, not a model: audiences are long, and every value comes from the database or from this module.
    """
    url = None
    if link is not None:
        url = link + make_token(key, registrant_id=row.id, generation=row.event_id, purpose=purpose, channel=channel)
    email = channel == "email" and url is not None
    return {
        "registrant_id": str(row.id), "language": row.language,
        "email": row.contact if channel == "email" else None,
        "phone": row.contact if channel in ("sms", "phone") else None,
        "address": row.address if channel == "post" else None,
        "basis": verdict.basis.value if verdict.basis else None,
        "contact_person": row.contact_person if row.kind == RegistrantKind.organisation else None,
        "optout_url": url, "list_unsubscribe": list_unsubscribe(url) if email else None,
        "list_unsubscribe_post": ONE_CLICK if email else None,
    }


# The largest chunk of candidates one read of an audience page fetches (chunks grow from the page size).
AUDIENCE_CHUNK_MAX = 10_000


@dataclass(frozen=True, slots=True)
class AudiencePage:
    """A page of `AudienceMember` rows as JSON-ready dicts, and the next cursor."""

    items: list[dict[str, Any]]
    next_cursor: str | None


async def audience(
    session: AsyncSession, *, actor: Principal, purpose_code: str, channel: str, params: PageParams, links: Links
) -> AudiencePage:
    """One page of the people who may be contacted right now for a purpose on a channel, decided by the rule engine.

    Candidates come from the database in address order, in chunks of bounded size; each goes through
    `rules.decide`; the first admitted registrant of an address is listed and later ones with the same address are
    not (one message per address).
    """
    _, profile = await _profile(session)
    purpose = _audience_purpose(profile, purpose_code, channel)
    key = repo.AUDIENCE_KEYSET.values(params)
    after = key[0] if key else None
    rule, guardian_age, today = purpose_rule(purpose, channel), await register.guardian_age(session), clock.utcnow().date()
    candidates = partial(
        repo.audience_candidates, purpose=purpose_code, channel=channel,
        consent_based=purpose.legal_basis is LegalBasis.consent,
        sale_types=profile.sale_record_types if purpose.soft_opt_in else [],
        visibility=registrants.visibility_for(actor).clause(), dialect=dialect_name(session))
    members: list[dict[str, Any]] = []
    last_contact, last_id, more = None, None, False
    link = optout_link(links.base_url, purpose=purpose_code, channel=channel) if stoppable(purpose) else None
    verdicts: dict[tuple[Any, ...], Verdict] = {}
    # Read in bounded chunks in (address, id) order, each resuming past the last row read, until the page is full
    # (and one more admitted address shows there is a next page) or the candidates run out.
    chunk, resume = params.limit + 1, None
    while not more:
        rows = (await session.execute(candidates(after=after, resume=resume, limit=chunk))).all()
        for row in rows:
            if row.contact == last_contact:
                continue
            # The engine is pure: rows with the same facts get the same verdict, decided once per page.
            facts = (row.kind, row.status, row.date_of_birth, row.state, row.given_by, row.sale_with_opt_out,
                     row.contact is not None)
            verdict = verdicts.get(facts)
            if verdict is None:
                verdict = verdicts[facts] = decide(_subject(row), rule, today=today, guardian_age=guardian_age)
            if not verdict.admitted:
                continue
            if len(members) == params.limit:
                more = True
                break
            members.append(_member(row, verdict, purpose=purpose_code, channel=channel, link=link, key=links.key))
            last_contact, last_id = row.contact, row.id
        if len(rows) < chunk:
            break
        resume, chunk = (rows[-1].contact, rows[-1].id), min(chunk * 2, AUDIENCE_CHUNK_MAX)
    audit.record(session, actor=actor, action="audience.read", resource_type="audience",
                 details={"purpose": purpose_code, "channel": channel, "count": len(members)})
    return AudiencePage(items=members, next_cursor=encode_cursor([str(last_id)]) if more else None)


async def explain(session: AsyncSession, *, actor: Principal, purpose_code: str, channel: str,
                  registrant_id: uuid.UUID) -> AudienceExplanation:
    """Why one registrant is in or out of an audience: the engine's verdict and the facts it read."""
    _, profile = await _profile(session)
    purpose = _audience_purpose(profile, purpose_code, channel)
    await _registrant(session, actor, registrant_id)
    stmt = repo.audience_candidates(purpose=purpose_code, channel=channel, consent_based=False,
                                    sale_types=profile.sale_record_types if purpose.soft_opt_in else [],
                                    visibility=None, after=None, registrant_id=registrant_id,
                                    dialect=dialect_name(session))
    row = (await session.execute(stmt)).one()
    subject, guardian_age, today = _subject(row), await register.guardian_age(session), clock.utcnow().date()
    verdict = decide(subject, purpose_rule(purpose, channel), today=today, guardian_age=guardian_age)
    audit.record(session, actor=actor, action="audience.explain", resource_type="registrant",
                 resource_id=registrant_id, registrant_ids=[registrant_id],
                 details={"purpose": purpose_code, "channel": channel, "admitted": verdict.admitted})
    facts = AudienceFacts(kind=subject.kind, status=subject.status, ledger_state=subject.state,
                          child=is_child(subject, today=today, guardian_age=guardian_age), given_by=subject.given_by,
                          sale_with_opt_out=subject.sale_with_opt_out, has_contact=subject.has_contact)
    return AudienceExplanation(registrant_id=registrant_id, purpose=purpose_code, channel=channel,
                               admitted=verdict.admitted, basis=verdict.basis, reason=verdict.reason, facts=facts)


OPTOUT_LINK = Principal(kind=PrincipalKind.system, id=None, name="one-click opt-out link", role=None)
_NO_TOKEN = "unknown or already used link"


async def _optout_target(session: AsyncSession, *, token: str, purpose_code: str, channel: str,
                         key: bytes) -> tuple[RowMapping, Purpose]:
    """The registrant and purpose of a valid, unused token; 404 alike for anything else."""
    claim = read_token(key, token, purpose=purpose_code, channel=channel)
    current = await register.current_version(session)
    purpose = current[1].purpose(purpose_code) if current and claim else None
    if claim is None or purpose is None or channel not in purpose.channels or not stoppable(purpose):
        raise NotFound(_NO_TOKEN)
    try:
        row = await _registrant(session, OPTOUT_LINK, claim.registrant_id)
    except NotFound as exc:
        raise NotFound(_NO_TOKEN) from exc
    if await repo.optout_used(session, token_hash=token_hash(token)):
        raise NotFound(_NO_TOKEN)
    return row, purpose


async def optout_language(session: AsyncSession, *, token: str, purpose_code: str, channel: str,
                          key: bytes) -> tuple[str, RegisterProfile]:
    """The language of the person a valid, unused token belongs to, and the profile naming the controller."""
    row, _ = await _optout_target(session, token=token, purpose_code=purpose_code, channel=channel, key=key)
    return row["language"], (await _profile(session))[1]


async def opt_out(session: AsyncSession, *, token: str, purpose_code: str, channel: str, key: bytes,
                  policy_url: str) -> OptedOut:
    """Record a withdrawal (consent) or an objection (other bases) from a one-click link; each token works once.

    The token's hash is claimed first with INSERT ... ON CONFLICT DO NOTHING, so of two concurrent uses one records
    the ledger event and the other gets the same 404 as an unknown token.
    """
    row, purpose = await _optout_target(session, token=token, purpose_code=purpose_code, channel=channel, key=key)
    hashed = token_hash(token)
    if not await repo.insert_optout_use(session, values={
            "token_hash": hashed, "registrant_id": row["id"], "purpose": purpose.code, "channel": channel,
            "event_id": None, "used_at": clock.utcnow()}):
        raise NotFound(_NO_TOKEN)
    stored = {(r["purpose"], r["channel"]): r["state"] for r in await repo.states_of(session, registrant_id=row["id"])}
    withdraw = (purpose.legal_basis is LegalBasis.consent or stored.get((purpose.code, channel)) == "granted"
                or not purpose.objectable)
    action = Action.withdraw if withdraw else Action.object
    event = await record_event(session, actor=OPTOUT_LINK, registrant_id=row["id"], policy_url=policy_url,
                               data=ConsentEventCreate(action=action, purpose=purpose.code, channel=channel,
                                                       source=Source.unsubscribe_link,
                                                       evidence=Evidence(reference="one-click opt-out link")))
    await repo.set_optout_event(session, token_hash=hashed, event_id=event.id)
    return OptedOut(purpose=purpose.code, channel=channel, action=action)


async def stats(session: AsyncSession) -> ConsentStats:
    """Counts per purpose, channel and state (no personal data)."""
    return ConsentStats(counts=[dict(r) for r in await repo.counts(session)])


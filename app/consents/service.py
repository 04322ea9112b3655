"""Rules of the ledger: what may be granted, withdrawn or objected to, by whom; state, receipts, audiences."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principal import Principal
from app.consents import repository as repo
from app.consents.schemas import (
    AudienceMember,
    ChannelState,
    ConsentEventCreate,
    ConsentEventRead,
    ConsentEventWithReceipt,
    ConsentReceipt,
    ConsentStateRead,
    ConsentStats,
    ReceiptController,
    ReceiptPurpose,
    ReceiptService,
)
from app.consents.state import Action, Decision, State, derive
from app.core import clock
from app.core.errors import Invalid, NotFound
from app.db.pagination import Page, PageParams
from app.register import service as register
from app.register.schemas import LegalBasis, Purpose, RegisterProfile
from app.registrants import service as registrants
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
    row = await registrants.visible_registrant(session, actor=actor, registrant_id=registrant_id,
                                               for_update=for_update)
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
    if data.action in (Action.grant, Action.withdraw) and purpose.legal_basis is not LegalBasis.consent:
        raise Invalid(f"purpose {purpose.code!r} rests on {purpose.legal_basis.value}, not consent: such a purpose "
                      "needs no consent (to stop it, object instead where it is objectable)", loc=["body", "action"])
    if data.action is Action.grant and purpose.retired:
        raise Invalid(f"purpose {purpose.code!r} is retired and takes no new consents", loc=["body", "purpose"])
    if data.action is Action.object and not purpose.objectable:
        raise Invalid(f"purpose {purpose.code!r} is not one a person can object to", loc=["body", "action"])
    return purpose


async def _given_by(session: AsyncSession, row: RowMapping, data: ConsentEventCreate) -> tuple[str, str | None]:
    """Who expressed it: for a child under the guardian age, always the guardian."""
    born: date | None = row["date_of_birth"]
    if born is None or registrants.age_on(born, clock.utcnow().date()) >= await register.guardian_age(session):
        return data.evidence.given_by or "self", None
    if data.evidence.given_by == "self":
        raise Invalid("the registrant is a child under the guardian age: the guardian gives and withdraws consent",
                      loc=["body", "evidence", "given_by"])
    guardian = row["guardian"] or {}
    return "guardian", guardian.get("name")


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
    given_by, guardian_name = await _given_by(session, row, data)
    evidence = data.evidence.model_dump(mode="json", exclude_none=True)
    evidence["given_by"] = given_by
    if guardian_name:
        evidence["guardian_name"] = guardian_name
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
    """Per purpose and channel of the profile: granted, withdrawn, objected or none."""
    await _registrant(session, actor, registrant_id)
    current = await register.current_version(session)
    stored = {(r["purpose"], r["channel"]): r for r in await repo.states_of(session, registrant_id=registrant_id)}
    pairs = [(p.code, c.value) for p in current[1].purposes for c in p.channels] if current else []
    pairs += sorted(set(stored) - set(pairs))
    states = [ChannelState(purpose=p, channel=c, state=State(stored[(p, c)]["state"]) if (p, c) in stored else State.none,
                           event_id=stored[(p, c)]["event_id"] if (p, c) in stored else None) for p, c in pairs]
    ledger = None
    if history:
        ledger = [ConsentEventRead.model_validate(e) for e in await repo.events_of(session, registrant_id=registrant_id)]
    audit.record(session, actor=actor, action="consent.read", resource_type="registrant", resource_id=registrant_id,
                 registrant_ids=[registrant_id], details={"history": history})
    return ConsentStateRead(registrant_id=registrant_id, states=states, history=ledger)


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
            consentType="EXPLICIT" if purpose and purpose.legal_basis is LegalBasis.consent else "NOT_REQUIRED",
            piiCategory=categories,
            primaryPurpose=True,
            termination="until withdrawn; withdrawing is as easy as granting (GDPR Art. 7(3))",
            thirdPartyDisclosure=bool(disclosed),
            thirdPartyName=", ".join(disclosed) or None,
        )])],
        action=event.action,
        channel=event.channel,
    )


def _contact(row: RowMapping, channel: str) -> dict[str, Any]:
    guardian = row["guardian"] or {}
    if channel == "email":
        return {"email": row["email"] or guardian.get("email")}
    if channel in ("sms", "phone"):
        return {"phone": row["phone"] or guardian.get("phone")}
    return {"address": row["address"]}


async def audience(
    session: AsyncSession, *, actor: Principal, purpose_code: str, channel: str, params: PageParams
) -> Page[AudienceMember]:
    """One page of the people who may be contacted right now for a purpose on a channel."""
    _, profile = await _profile(session)
    purpose = profile.purpose(purpose_code)
    if purpose is None or purpose.retired:
        raise Invalid(f"unknown or retired purpose {purpose_code!r}", loc=["query", "purpose"])
    if channel not in purpose.channels:
        raise Invalid(f"purpose {purpose_code!r} does not use the channel {channel!r}", loc=["query", "channel"])
    rows = await repo.audience(
        session, purpose=purpose_code, channel=channel, consent_based=purpose.legal_basis is LegalBasis.consent,
        direct_marketing=_direct_marketing(profile), visibility=registrants.visibility_for(actor).clause(),
        params=params)
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    members = [AudienceMember(registrant_id=r["id"], language=r["language"], **contact)
               for r in rows if any((contact := _contact(r, channel)).values())]
    audit.record(session, actor=actor, action="audience.read", resource_type="audience",
                 details={"purpose": purpose_code, "channel": channel, "count": len(members)})
    return Page(items=members, next_cursor=repo.AUDIENCE_KEYSET.cursor(rows[-1]) if more and rows else None)


async def stats(session: AsyncSession) -> ConsentStats:
    """Counts per purpose, channel and state (no personal data)."""
    return ConsentStats(counts=[dict(r) for r in await repo.counts(session)])


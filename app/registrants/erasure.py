"""Erasure (GDPR Art. 17) and restriction (Art. 18) of a registrant, in the caller's transaction.

Each domain that stores personal data about registrants declares its own erasure step next to its data (its
`rights.py`), and `app.wiring` lists them; `erase` runs them all, so one transaction removes everything or, if
anything fails, nothing. This module's own steps cover the registrants domain: references, customer types,
relationship records, and the registrant's details on other people's records.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principal import Principal
from app.core import clock, security
from app.core.errors import Conflict, Gone, NotFound
from app.outbox.models import OutboxMessage
from app.outbox.models import Status as MessageStatus
from app.register import service as register
from app.register.schemas import LegalBasis, RegisterProfile, duration_span
from app.registrants import repository as registrants_repo
from app.registrants.models import (
    GuardianLink,
    Registrant,
    RegistrantCustomerType,
    RegistrantHistory,
    RegistrantKind,
    RegistrantRef,
    RegistrantStatus,
    RelationshipRecord,
)

R, REF, CT, HIST, REC = (Registrant.__table__, RegistrantRef.__table__, RegistrantCustomerType.__table__,
                         RegistrantHistory.__table__, RelationshipRecord.__table__)
GL = GuardianLink.__table__
OUT = OutboxMessage.__table__
ERASED_PREFIX = "erased:"
PERSONAL_FIELDS = ("given_name", "family_name", "name", "business_id", "date_of_birth", "guardian", "email",
                   "phone", "address")


@dataclass(frozen=True)
class Kept:
    """Something erasure did not remove, and the legal ground for keeping it."""

    what: str
    count: int
    ground: str


@dataclass(frozen=True)
class ErasureContext:
    """What every erasure step needs to know."""

    registrant_id: uuid.UUID
    profile: RegisterProfile | None
    key: str  # the newest erasure key (REKISTERI_ERASURE_KEYS), which erased references are hashed under
    request_ref: str = ""  # `request:<id>` of the erasure request being completed, which stays until it is closed


@dataclass(frozen=True)
class ErasureStep:
    """One domain's erasure of its own tables (the composition root, `app.wiring`, lists them in order)."""

    name: str
    tables: tuple[str, ...]
    run: Callable[[AsyncSession, ErasureContext], Awaitable[list[Kept]]]


def erased_ref(key: str, system: str, external_id: str) -> str:
    """What an erased registrant's external reference is kept as: a keyed hash, never the id itself."""
    return ERASED_PREFIX + security.keyed_hash(key, f"{system}\x00{external_id}")


async def refuse_erased_refs(session: AsyncSession, *, keys: Sequence[str], refs: list[tuple[str, str]]) -> None:
    """410 Gone when an integration pushes the reference of a person who was erased (GDPR Art. 17).

    Every erasure key is tried, newest first, so a reference hashed before a key rotation is still recognised.
    """
    for system, external_id in refs:
        hashed = erased_refs(keys, system, external_id)
        stmt = select(REF.c.id).where(REF.c.system == system, REF.c.external_id.in_(hashed))
        if (await session.execute(stmt)).first() is not None:
            raise erased_gone(system)


def erased_refs(keys: Sequence[str], system: str, external_id: str) -> list[str]:
    """What a reference would be kept as had its person been erased, under each erasure key."""
    return [erased_ref(key, system, external_id) for key in keys]


def erased_gone(system: str) -> Gone:
    """The 410 for a reference whose person was erased."""
    return Gone("the person with this reference was erased at their request; staff can reinstate them only with a "
                "new consent", errors=[{"loc": ["ref", system], "msg": "erased"}])


@dataclass(frozen=True)
class ErasureResult:
    """What erasure removed and what it kept, with the grounds."""

    registrant_id: uuid.UUID
    erased_at: datetime
    kept: list[Kept]


async def erase(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID, key: str,
                request_ref: str, steps: Sequence[ErasureStep]) -> ErasureResult:
    """Remove the registrant's personal data everywhere, keeping only what a legal obligation requires."""
    row = (await session.execute(select(R.c.status).where(R.c.id == registrant_id).with_for_update())).first()
    if row is None:
        raise NotFound("no such registrant")
    if row.status == RegistrantStatus.erased:
        raise Conflict("the registrant is already erased")
    context = ErasureContext(registrant_id=registrant_id, profile=await register.current_profile(session), key=key,
                             request_ref=request_ref)
    now = clock.utcnow()
    kept: list[Kept] = []
    for step in steps:
        kept += await step.run(session, context)
    await session.execute(update(R).where(R.c.id == registrant_id).values(
        **dict.fromkeys(PERSONAL_FIELDS), contact_persons=[], status=RegistrantStatus.erased, version=R.c.version + 1,
        updated_at=now))
    await session.execute(delete(HIST).where(HIST.c.registrant_id == registrant_id))
    version = (await session.execute(select(R.c.version).where(R.c.id == registrant_id))).scalar_one()
    await session.execute(HIST.insert().values(
        id=uuid.uuid4(), registrant_id=registrant_id, version=version, at=now, action="erase",
        actor_type=actor.kind, actor_id=str(actor.id) if actor.id else None, actor_name=actor.name,
        fields=list(PERSONAL_FIELDS), changes={"by": request_ref}))
    audit.record(session, actor=actor, action="registrant.erase", resource_type="registrant",
                 resource_id=registrant_id, registrant_ids=[registrant_id],
                 details={"kept": [k.__dict__ for k in kept]})
    return ErasureResult(registrant_id=registrant_id, erased_at=now, kept=kept)


def _legal_hold(profile: RegisterProfile | None, category: str) -> tuple[str, datetime] | None:
    """The statute and the cutoff before which a legal-obligation category's records may go."""
    found = profile.category(category) if profile else None
    if found is None or found.legal_basis is not LegalBasis.legal_obligation:
        return None
    span = duration_span(found.minimum_retention or found.retention)
    cutoff = clock.utcnow() - span
    return found.statute or found.name.en, datetime(cutoff.year, 1, 1, tzinfo=UTC)


async def _erase_core(session: AsyncSession, context: ErasureContext) -> list[Kept]:
    """References become keyed hashes; records go unless the law still needs them."""
    registrant_id, profile, key = context.registrant_id, context.profile, context.key
    refs = (await session.execute(select(REF.c.id, REF.c.system, REF.c.external_id)
                                  .where(REF.c.registrant_id == registrant_id))).all()
    for ref in refs:
        await session.execute(update(REF).where(REF.c.id == ref.id)
                              .values(external_id=erased_ref(key, ref.system, ref.external_id)))
    await session.execute(delete(CT).where(CT.c.registrant_id == registrant_id))
    kept: list[Kept] = []
    held_categories = {c for (c,) in (await session.execute(
        select(REC.c.data_category).where(REC.c.registrant_id == registrant_id).distinct())).all()}
    for category in sorted(held_categories):
        hold = _legal_hold(profile, category)
        mine = and_(REC.c.registrant_id == registrant_id, REC.c.data_category == category)
        if hold is None:
            await session.execute(delete(REC).where(mine))
            continue
        statute, cutoff = hold
        await session.execute(delete(REC).where(mine, REC.c.occurred_at < cutoff))
        count = (await session.execute(select(func.count()).select_from(REC).where(mine))).scalar_one()
        if count:
            ground = f"GDPR Art. 17(3)(b): legal obligation ({statute})"
            # Minimised: the voucher's content stays for the statute; the creator's note of who pushed it goes.
            await session.execute(update(REC).where(mine).values(created_by="erased", legal_hold=ground))
            kept.append(Kept(what=f"relationship_record:{category}", count=count, ground=ground))
    return kept


async def restrict(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID, request_ref: str) -> None:
    """Art. 18: the registrant leaves every audience and notice; integrations no longer see them."""
    await _set_status(session, actor=actor, registrant_id=registrant_id, expected=RegistrantStatus.active,
                      new=RegistrantStatus.restricted, action="registrant.restrict", request_ref=request_ref)
    await session.execute(update(OUT).where(OUT.c.registrant_id == registrant_id, OUT.c.status == MessageStatus.pending)
                          .values(status=MessageStatus.failed, last_error="cancelled: processing restricted"))


async def lift_restriction(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID,
                           request_ref: str) -> None:
    """End a restriction (recorded)."""
    await _set_status(session, actor=actor, registrant_id=registrant_id, expected=RegistrantStatus.restricted,
                      new=RegistrantStatus.active, action="registrant.lift_restriction", request_ref=request_ref)


async def _set_status(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID, expected: str, new: str,
                      action: str, request_ref: str) -> None:
    row = (await session.execute(select(R.c.status, R.c.version).where(R.c.id == registrant_id)
                                 .with_for_update())).first()
    if row is None:
        raise NotFound("no such registrant")
    if row.status != expected:
        raise Conflict(f"the registrant is {row.status}, not {expected}")
    now = clock.utcnow()
    await session.execute(update(R).where(R.c.id == registrant_id)
                          .values(status=new, version=row.version + 1, updated_at=now))
    # A restricted guardian's contact is not used for their children's notices (and is again once lifted).
    children = (await session.execute(select(GL.c.child_id).where(GL.c.guardian_id == registrant_id))).scalars()
    await registrants_repo.refresh_guardian_contact(session, child_ids=set(children))
    await session.execute(HIST.insert().values(
        id=uuid.uuid4(), registrant_id=registrant_id, version=row.version + 1, at=now, action=action.split(".")[1],
        actor_type=actor.kind, actor_id=str(actor.id) if actor.id else None, actor_name=actor.name,
        fields=["status"], changes={"status": {"old": row.status, "new": new}, "by": request_ref}))
    audit.record(session, actor=actor, action=action, resource_type="registrant", resource_id=registrant_id,
                 registrant_ids=[registrant_id])


async def _erase_from_others(session: AsyncSession, context: ErasureContext) -> list[Kept]:
    """A guardian or contact person erased: unlink them from the children and take them off organisations.

    The children's own registrations stay (they are other people's data) but lose the link to the erased guardian
    and are flagged for staff, who must find out who now acts for the child. An erased child's links go as well.
    """
    me = (await session.execute(select(R.c.email, R.c.phone).where(R.c.id == context.registrant_id))).one()
    contacts = {value for value in (me.email, me.phone) if value}
    children = set((await session.execute(select(GL.c.child_id).where(
        GL.c.guardian_id == context.registrant_id))).scalars())
    await session.execute(delete(GL).where(or_(GL.c.guardian_id == context.registrant_id,
                                               GL.c.child_id == context.registrant_id)))
    await registrants_repo.refresh_guardian_contact(session, child_ids=children)
    others = (await session.execute(select(R.c.id, R.c.kind, R.c.contact_persons, R.c.version).where(
        R.c.id != context.registrant_id, R.c.status != RegistrantStatus.erased,
        or_(R.c.id.in_(children), R.c.kind == RegistrantKind.organisation) if contacts else R.c.id.in_(children))
    )).all()
    now = clock.utcnow()
    for other in others:
        changes: dict = {}
        fields: list[str] = []
        if other.id in children:
            changes["attention"] = "the guardian was erased at their request: who acts for the child?"
            fields.append("guardians")
        kept_contacts = [c for c in other.contact_persons or [] if not {c.get("email"), c.get("phone")} & contacts]
        if len(kept_contacts) != len(other.contact_persons or []):
            changes["contact_persons"] = kept_contacts
            fields.append("contact_persons")
        if changes:
            if contacts:
                await _scrub_history(session, registrant_id=other.id, contacts=contacts)
            await session.execute(update(R).where(R.c.id == other.id).values(
                **changes, version=other.version + 1, updated_at=now))
            await session.execute(HIST.insert().values(
                id=uuid.uuid4(), registrant_id=other.id, version=other.version + 1, at=now, action="update",
                actor_type="system", actor_id=None, actor_name="erasure of a linked person",
                fields=sorted(fields), changes={}))
    return []


async def _scrub_history(session: AsyncSession, *, registrant_id: uuid.UUID, contacts: set[str]) -> None:
    """Blank the erased person's details out of the old and new values in another registrant's history."""
    rows = (await session.execute(select(HIST.c.id, HIST.c.changes).where(HIST.c.registrant_id == registrant_id))).all()
    for row in rows:
        changes = dict(row.changes or {})
        touched = [f for f in ("guardian", "contact_persons") if f in changes and any(c in str(changes[f]) for c in contacts)]
        for field in touched:
            changes[field] = {"old": "(erased)", "new": "(erased)"}
        if touched:
            await session.execute(update(HIST).where(HIST.c.id == row.id).values(changes=changes))


STEPS = (ErasureStep("registrants", ("registrant_ref", "registrant_customer_type", "relationship_record"), _erase_core),
         ErasureStep("linked people", ("registrant", "guardian_link"), _erase_from_others))

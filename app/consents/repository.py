"""Statements on the ledger and the derived state; they flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.consents.models import ConsentEvent, ConsentState, OptOutUse
from app.consents.state import Action, Decision, LedgerEvent, State
from app.db.pagination import UUID, Keyset, PageParams
from app.db.repository import insert_ignoring_conflicts
from app.registrants.models import Registrant, RegistrantStatus, RelationshipRecord

EV = ConsentEvent.__table__
ST = ConsentState.__table__
R = Registrant.__table__
REC = RelationshipRecord.__table__
OPT = OptOutUse.__table__
# The audience's cursor: the registrant id of the last row (the next page starts after its address).
AUDIENCE_KEYSET = Keyset(((R.c.id, UUID),))


async def insert_event(session: AsyncSession, *, values: dict[str, Any]) -> None:
    """Append one event to the ledger."""
    await session.execute(insert(EV).values(**values))


async def ledger_of(session: AsyncSession, *, registrant_id: uuid.UUID) -> list[LedgerEvent]:
    """Every event of one registrant, in recording order, as the derivation needs them."""
    stmt = (select(EV.c.id, EV.c.purpose, EV.c.channel, EV.c.action, EV.c.effective_at)
            .where(EV.c.registrant_id == registrant_id).order_by(EV.c.recorded_at, EV.c.id))
    rows = (await session.execute(stmt)).all()
    return [LedgerEvent(id=r.id, seq=i, purpose=r.purpose, channel=r.channel, action=Action(r.action),
                        effective_at=r.effective_at) for i, r in enumerate(rows)]


async def replace_state(session: AsyncSession, *, registrant_id: uuid.UUID,
                        decisions: dict[tuple[str, str], Decision], now: datetime) -> None:
    """Rewrite one registrant's current-state rows from a fresh derivation."""
    await session.execute(delete(ST).where(ST.c.registrant_id == registrant_id))
    rows = [{"registrant_id": registrant_id, "purpose": purpose, "channel": channel, "state": d.state.value,
             "event_id": d.event_id, "updated_at": now} for (purpose, channel), d in decisions.items()]
    if rows:
        await session.execute(insert(ST), rows)


async def states_of(session: AsyncSession, *, registrant_id: uuid.UUID) -> list[RowMapping]:
    """The stored current state of one registrant."""
    stmt = (select(ST.c.purpose, ST.c.channel, ST.c.state, ST.c.event_id)
            .where(ST.c.registrant_id == registrant_id).order_by(ST.c.purpose, ST.c.channel))
    return list((await session.execute(stmt)).mappings())


async def states_with_givers(session: AsyncSession, *, registrant_id: uuid.UUID) -> list[RowMapping]:
    """The stored current state of one registrant, with who gave each deciding event."""
    stmt = (select(ST.c.purpose, ST.c.channel, ST.c.state, ST.c.event_id, EV.c.given_by)
            .select_from(ST.outerjoin(EV, EV.c.id == ST.c.event_id))
            .where(ST.c.registrant_id == registrant_id).order_by(ST.c.purpose, ST.c.channel))
    return list((await session.execute(stmt)).mappings())


async def has_sale_with_opt_out(session: AsyncSession, *, registrant_id: uuid.UUID, sale_types: Iterable[str]) -> bool:
    """Whether a sale record of these types offered the refusal of marketing (917/2014 § 200(2))."""
    types = list(sale_types)
    if not types:
        return False
    stmt = select(exists().where(REC.c.registrant_id == registrant_id, REC.c.type.in_(types),
                                 REC.c.opt_out_offered.is_(true())))
    return bool((await session.execute(stmt)).scalar())


async def optout_used(session: AsyncSession, *, token_hash: str) -> bool:
    """Whether an opt-out token was used already."""
    return (await session.execute(select(OPT.c.token_hash).where(OPT.c.token_hash == token_hash))).first() is not None


async def events_of(session: AsyncSession, *, registrant_id: uuid.UUID) -> list[RowMapping]:
    """The whole ledger of one registrant, oldest first."""
    stmt = select(EV).where(EV.c.registrant_id == registrant_id).order_by(EV.c.effective_at, EV.c.recorded_at)
    return list((await session.execute(stmt)).mappings())


async def event_by_id(session: AsyncSession, *, event_id: uuid.UUID) -> RowMapping | None:
    """One ledger event."""
    return (await session.execute(select(EV).where(EV.c.id == event_id))).mappings().one_or_none()


async def purposes_used(session: AsyncSession, codes: set[str]) -> set[str]:
    """Which of these purpose codes the ledger names."""
    rows = await session.execute(select(EV.c.purpose).where(EV.c.purpose.in_(codes)).distinct())
    return {row.purpose for row in rows}


def contact_of(registrant: Any, channel: str, *, dialect: str) -> ColumnElement[Any]:
    """The one address a channel reaches a registrant at: its own, else its guardian's or first contact person's.

    On PostgreSQL compared byte-wise (`COLLATE "C"`): the audience sorts by it, and a locale's rules only cost there.
    """
    if channel == "post":
        # A JSON column may hold JSON null rather than SQL NULL.
        contact = func.nullif(cast(registrant.c.address, Text), "null")
    else:
        field = "email" if channel == "email" else "phone"
        own = registrant.c.email if field == "email" else registrant.c.phone
        # `guardian` holds the linked guardians' email and phone (kept by the registrants domain), so the address
        # stays one expression of the row, which the indexes of migration 0020 are built on.
        contact = func.coalesce(own, registrant.c.guardian[field].as_string(),
                                registrant.c.contact_persons[(0, field)].as_string())
    return contact.collate("C") if dialect == "postgresql" else contact


def audience_candidates(
    *,
    purpose: str,
    channel: str,
    consent_based: bool,
    sale_types: Iterable[str],
    visibility: ColumnElement[bool] | None,
    after: uuid.UUID | None,
    dialect: str,
    registrant_id: uuid.UUID | None = None,
    resume: tuple[str, uuid.UUID] | None = None,
    limit: int | None = None,
) -> Select[Any]:
    """Everyone the rule engine must look at, in (address, id) order: the facts it needs, one row each.

    The conditions here only drop rows the engine would drop anyway (not active, no address, and for consent-based
    purposes no grant); the engine decides the rest. After a cursor (`after`, a registrant id), rows start past
    that row's address, so an address is never listed twice across pages; `resume` continues a page's scan past
    the (address, id) of the last row read, `limit` caps one read. On PostgreSQL the (address, id) order is read
    from the partial expression indexes of migration 0020, so a page costs its own rows, not a sort of everyone.
    """
    contact = contact_of(R, channel, dialect=dialect).label("contact")
    sale_types = list(sale_types)
    sale = (exists().where(REC.c.registrant_id == R.c.id, REC.c.type.in_(sale_types), REC.c.opt_out_offered.is_(true()))
            if sale_types else literal(False))
    here = and_(ST.c.registrant_id == R.c.id, ST.c.purpose == purpose, ST.c.channel == channel)
    # Who gave the deciding event matters to the engine only for a child (a known date of birth); a page of adults
    # then reads no ledger row at all. Explaining one registrant always shows it.
    giver = select(EV.c.given_by).where(EV.c.id == ST.c.event_id).scalar_subquery()
    if registrant_id is None:
        giver = case((R.c.date_of_birth.is_not(None), giver))
    # Kind and status as their stored strings (StrEnum members compare equal): no enum lookup per row.
    columns = [R.c.id, type_coerce(R.c.kind, String).label("kind"), type_coerce(R.c.status, String).label("status"),
               R.c.date_of_birth, R.c.language, contact,
               R.c.contact_persons[(0, "name")].as_string().label("contact_person"),
               ST.c.state, ST.c.event_id, giver.label("given_by"), sale.label("sale_with_opt_out")]
    # Only the post channel reads the (JSON) postal address; decoding it per row costs the other channels.
    columns.append(R.c.address if channel == "post" else literal(None).label("address"))
    stmt = (select(*columns)
            .select_from(R.outerjoin(ST, here))
            .order_by(contact, R.c.id))
    if registrant_id is not None:
        return stmt.where(R.c.id == registrant_id)
    stmt = stmt.where(R.c.status == RegistrantStatus.active, contact.is_not(None))
    stmt = stmt.where(ST.c.state == State.granted) if consent_based else stmt.where(
        or_(ST.c.state.is_(None), ST.c.state != State.objected))
    if visibility is not None:
        stmt = stmt.where(visibility)
    if resume is not None:
        stmt = stmt.where(tuple_(contact, R.c.id) > tuple_(literal(resume[0]), literal(resume[1])))
    elif after is not None:
        previous = R.alias("previous")
        stmt = stmt.where(contact > select(contact_of(previous, channel, dialect=dialect)).where(previous.c.id == after)
                          .scalar_subquery())
    return stmt.limit(limit) if limit is not None else stmt


async def insert_optout_use(session: AsyncSession, *, values: dict[str, Any]) -> bool:
    """Keep a used opt-out token's hash; False when it was already used (also by a concurrent request)."""
    stmt = insert_ignoring_conflicts(session, OPT, index_elements=["token_hash"]).values(**values)
    return (await session.execute(stmt.returning(OPT.c.token_hash))).scalar_one_or_none() is not None


async def set_optout_event(session: AsyncSession, *, token_hash: str, event_id: uuid.UUID) -> None:
    """Point a use at the ledger event it recorded."""
    await session.execute(update(OPT).where(OPT.c.token_hash == token_hash).values(event_id=event_id))


async def counts(session: AsyncSession) -> list[RowMapping]:
    """Registrants per purpose, channel and state, leaving out restricted and erased ones."""
    stmt = (select(ST.c.purpose, ST.c.channel, ST.c.state, func.count().label("registrants"))
            .join(R, R.c.id == ST.c.registrant_id).where(R.c.status == RegistrantStatus.active)
            .group_by(ST.c.purpose, ST.c.channel, ST.c.state).order_by(ST.c.purpose, ST.c.channel, ST.c.state))
    return list((await session.execute(stmt)).mappings())

"""Statements on the ledger and the derived state; they flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.consents.models import ConsentEvent, ConsentState
from app.consents.state import Action, Decision, LedgerEvent, State
from app.db.pagination import UUID, Keyset, PageParams
from app.registrants.models import Registrant, RegistrantStatus

EV = ConsentEvent.__table__
ST = ConsentState.__table__
R = Registrant.__table__
AUDIENCE_KEYSET = Keyset(((R.c.id, UUID),))

_CONTACT_COLUMNS = {"email": (R.c.email,), "sms": (R.c.phone,), "phone": (R.c.phone,), "post": (R.c.address,)}


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


async def audience(
    session: AsyncSession,
    *,
    purpose: str,
    channel: str,
    consent_based: bool,
    direct_marketing: Iterable[str],
    visibility: ColumnElement[bool] | None,
    params: PageParams,
) -> list[RowMapping]:
    """Active registrants who may be contacted for a purpose on a channel, in id order (one extra row)."""
    contact = _CONTACT_COLUMNS[channel][0]
    here = and_(ST.c.registrant_id == R.c.id, ST.c.purpose == purpose, ST.c.channel == channel)
    conditions: list[ColumnElement[bool]] = [R.c.status == RegistrantStatus.active,
                                             or_(contact.is_not(None), R.c.guardian.is_not(None))]
    if consent_based:
        conditions.append(exists().where(here, ST.c.state == State.granted))
    else:
        conditions.append(~exists().where(here, ST.c.state == State.objected))
    marketing = list(direct_marketing)
    if purpose in marketing:
        # Art. 21(3): an objection to direct marketing, on any channel, ends all of it.
        conditions.append(~exists().where(ST.c.registrant_id == R.c.id, ST.c.purpose.in_(marketing),
                                          ST.c.state == State.objected))
    if visibility is not None:
        conditions.append(visibility)
    after = AUDIENCE_KEYSET.after(params)
    if after is not None:
        conditions.append(after)
    stmt = (select(R.c.id, R.c.language, R.c.email, R.c.phone, R.c.address, R.c.guardian)
            .where(*conditions).order_by(R.c.id).limit(params.limit + 1))
    return list((await session.execute(stmt)).mappings())


async def counts(session: AsyncSession) -> list[RowMapping]:
    """Registrants per purpose, channel and state, leaving out restricted and erased ones."""
    stmt = (select(ST.c.purpose, ST.c.channel, ST.c.state, func.count().label("registrants"))
            .join(R, R.c.id == ST.c.registrant_id).where(R.c.status == RegistrantStatus.active)
            .group_by(ST.c.purpose, ST.c.channel, ST.c.state).order_by(ST.c.purpose, ST.c.channel, ST.c.state))
    return list((await session.execute(stmt)).mappings())

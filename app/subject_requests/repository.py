"""Statements on data-subject requests, their events and packages; they flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.pagination import INSTANT, UUID, Keyset, PageParams
from app.subject_requests.models import (
    SubjectRequest,
    SubjectRequestConfirmation,
    SubjectRequestEvent,
    SubjectRequestPackage,
)
from app.subject_requests.states import OPEN_STATUSES, RequestStatus, RequestType

RQ = SubjectRequest.__table__
REQUESTS_KEYSET = Keyset(((RQ.c.received_at, INSTANT), (RQ.c.id, UUID)))
EVT = SubjectRequestEvent.__table__
PKG = SubjectRequestPackage.__table__
CONF = SubjectRequestConfirmation.__table__

# Everything but the callback secret, which is read only by the signing-key resolver.
_COLUMNS = [c for c in RQ.c if c.name != "callback_secret"]
_HAS_PACKAGE = select(PKG.c.request_id).where(PKG.c.request_id == RQ.c.id).exists().label("package_available")


@dataclass(frozen=True)
class RequestFilter:
    """What to look for among requests."""

    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    registrant_id: uuid.UUID | None = None
    overdue: bool | None = None
    due_before: datetime | None = None
    channel: str | None = None


def _select() -> Any:
    """The request columns (never the callback secret) and whether a package exists."""
    return select(*_COLUMNS, _HAS_PACKAGE)


async def get(session: AsyncSession, *, request_id: uuid.UUID, creator: str | None,
              for_update: bool = False) -> RowMapping | None:
    """One request (only the creator's, when a creator is given)."""
    stmt = _select().where(RQ.c.id == request_id)
    if creator is not None:
        stmt = stmt.where(RQ.c.created_by == creator)
    if for_update:
        stmt = stmt.with_for_update(of=RQ)
    return (await session.execute(stmt)).mappings().one_or_none()


async def find(session: AsyncSession, *, filters: RequestFilter, creator: str | None, now: datetime,
               params: PageParams) -> list[RowMapping]:
    """A page of requests in order of receipt (one row more than the limit)."""
    f = filters
    stmt = _select().order_by(RQ.c.received_at, RQ.c.id).limit(params.limit + 1)
    if creator is not None:
        stmt = stmt.where(RQ.c.created_by == creator)
    if f.statuses:
        stmt = stmt.where(RQ.c.status.in_(f.statuses))
    if f.types:
        stmt = stmt.where(RQ.c.type.in_(f.types))
    if f.registrant_id is not None:
        stmt = stmt.where(RQ.c.registrant_id == f.registrant_id)
    if f.channel is not None:
        stmt = stmt.where(RQ.c.channel == f.channel)
    if f.due_before is not None:
        stmt = stmt.where(RQ.c.due_at < f.due_before)
    if f.overdue is True:
        stmt = stmt.where(RQ.c.status.in_(OPEN_STATUSES), RQ.c.due_at < now)
    elif f.overdue is False:
        stmt = stmt.where(or_(RQ.c.status.not_in(OPEN_STATUSES), RQ.c.due_at >= now))
    after = REQUESTS_KEYSET.after(params)
    if after is not None:
        stmt = stmt.where(after)
    return list((await session.execute(stmt)).mappings())


async def insert_request(session: AsyncSession, *, values: dict[str, Any]) -> None:
    """Insert a request row."""
    await session.execute(insert(RQ).values(**values))


async def update_request(session: AsyncSession, *, request_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Change a request row."""
    await session.execute(update(RQ).where(RQ.c.id == request_id).values(**values))


async def add_event(session: AsyncSession, *, values: dict[str, Any]) -> None:
    """Append one transition to the request's log."""
    await session.execute(insert(EVT).values(id=uuid.uuid4(), **values))


async def events_of(session: AsyncSession, *, request_id: uuid.UUID) -> list[RowMapping]:
    """A request's transitions, oldest first."""
    stmt = (select(EVT.c.at, EVT.c.action, EVT.c.from_status, EVT.c.to_status, EVT.c.actor, EVT.c.actor_name,
                   EVT.c.details).where(EVT.c.request_id == request_id).order_by(EVT.c.at, EVT.c.id))
    return list((await session.execute(stmt)).mappings())


async def first_open_of(session: AsyncSession, *, registrant_id: uuid.UUID, type_: str,
                        exclude: uuid.UUID) -> uuid.UUID | None:
    """The earliest other open request of the same type for the same registrant."""
    stmt = (select(RQ.c.id).where(RQ.c.registrant_id == registrant_id, RQ.c.type == type_,
                                  RQ.c.status.in_(OPEN_STATUSES), RQ.c.id != exclude)
            .order_by(RQ.c.received_at, RQ.c.id).limit(1))
    return (await session.execute(stmt)).scalar_one_or_none()


async def last_completed_access(session: AsyncSession, *, registrant_id: uuid.UUID, since: datetime | None,
                                exclude: uuid.UUID) -> uuid.UUID | None:
    """The latest access request of a registrant completed (at or after `since`, when given)."""
    stmt = (select(RQ.c.id).where(RQ.c.registrant_id == registrant_id, RQ.c.type == RequestType.access,
                                  RQ.c.status == RequestStatus.completed, RQ.c.id != exclude)
            .order_by(RQ.c.completed_at.desc()).limit(1))
    if since is not None:
        stmt = stmt.where(RQ.c.completed_at >= since)
    return (await session.execute(stmt)).scalar_one_or_none()


async def of_registrant(session: AsyncSession, *, registrant_id: uuid.UUID) -> list[dict]:
    """A registrant's requests, oldest first, as plain dicts (for the package)."""
    stmt = (select(RQ.c.id, RQ.c.type, RQ.c.status, RQ.c.channel, RQ.c.received_at, RQ.c.due_at,
                   RQ.c.completed_at, RQ.c.details, RQ.c.changes, RQ.c.purposes, RQ.c.outcome)
            .where(RQ.c.registrant_id == registrant_id).order_by(RQ.c.received_at, RQ.c.id))
    return [dict(row) for row in (await session.execute(stmt)).mappings()]


async def purposes_named(session: AsyncSession, codes: set[str]) -> set[str]:
    """Which of these purpose codes an objection request names (few such requests: filtered here, not in SQL)."""
    stmt = select(RQ.c.purposes).where(RQ.c.type == RequestType.objection)
    return {code for (named,) in (await session.execute(stmt)).all() for code in named or () if code in codes}


async def callback_secret(session: AsyncSession, *, request_id: uuid.UUID) -> str | None:
    """The secret that signs a request's status callbacks."""
    return (await session.execute(select(RQ.c.callback_secret).where(RQ.c.id == request_id))).scalar_one_or_none()


async def save_package(session: AsyncSession, *, values: dict[str, Any]) -> None:
    """Store the frozen package of a request."""
    await session.execute(insert(PKG).values(**values))


async def package(session: AsyncSession, *, request_id: uuid.UUID) -> RowMapping | None:
    """The frozen package of a request."""
    return (await session.execute(select(PKG).where(PKG.c.request_id == request_id))).mappings().one_or_none()


async def open_counts(session: AsyncSession) -> list[RowMapping]:
    """Open requests per type and status."""
    stmt = (select(RQ.c.type, RQ.c.status, func.count().label("n")).where(RQ.c.status.in_(OPEN_STATUSES))
            .group_by(RQ.c.type, RQ.c.status))
    return list((await session.execute(stmt)).mappings())


async def count_open_due(session: AsyncSession, *, before: datetime, after: datetime | None = None) -> int:
    """Open requests due before `before` (and at or after `after`)."""
    stmt = select(func.count()).select_from(RQ).where(RQ.c.status.in_(OPEN_STATUSES), RQ.c.due_at < before)
    if after is not None:
        stmt = stmt.where(RQ.c.due_at >= after)
    return (await session.execute(stmt)).scalar_one()


async def completion_times(session: AsyncSession, *, since: datetime) -> list[tuple[datetime, datetime]]:
    """(received, completed) of the requests completed since a time."""
    stmt = select(RQ.c.received_at, RQ.c.completed_at).where(RQ.c.status == RequestStatus.completed,
                                                             RQ.c.completed_at >= since)
    return [(r.received_at, r.completed_at) for r in await session.execute(stmt)]


async def count_extended(session: AsyncSession) -> int:
    """Requests whose deadline was extended."""
    return (await session.execute(select(func.count()).select_from(RQ).where(RQ.c.extended_at.is_not(None))))\
        .scalar_one()


async def add_confirmation(session: AsyncSession, *, values: dict[str, Any]) -> None:
    """Store a confirmation link (its token's digest only)."""
    await session.execute(insert(CONF).values(id=uuid.uuid4(), **values))


async def use_confirmation(session: AsyncSession, *, token_sha256: str, now: datetime) -> RowMapping | None:
    """Spend an unused, unexpired link in one statement (so two clicks cannot both win); None otherwise."""
    stmt = (update(CONF).where(CONF.c.token_sha256 == token_sha256, CONF.c.used_at.is_(None), CONF.c.expires_at > now)
            .values(used_at=now).returning(CONF.c.id, CONF.c.request_id, CONF.c.channel, CONF.c.sent_to,
                                           CONF.c.created_at))
    return (await session.execute(stmt)).mappings().one_or_none()


def ids(rows: Iterable[RowMapping]) -> list[uuid.UUID]:
    """The registrant ids a list of request rows names."""
    return [r["registrant_id"] for r in rows if r["registrant_id"] is not None]

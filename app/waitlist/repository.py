"""Statements on entries, tags, notifications and deliveries; they flush, never commit.

A wave of notices is written set-based: on PostgreSQL one INSERT ... SELECT statement picks the entries,
writes the deliveries and their outbox messages and makes each recipient's unsubscribe token from a
per-wave secret; on SQLite the same picked rows are written with two executemany inserts.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiClient
from app.consents.models import ConsentState as ConsentStateRow
from app.consents.state import State as ConsentState
from app.db.base import UTCDateTime
from app.db.pagination import INSTANT, UUID, Keyset, PageParams
from app.db.repository import dialect_name
from app.outbox.headers import ONE_CLICK, unsubscribe_headers
from app.outbox.models import OutboxMessage
from app.outbox.models import Status as MessageStatus
from app.registrants.models import GuardianLink, Registrant, RegistrantStatus
from app.waitlist.models import (
    EntryStatus,
    WaitlistDelivery,
    WaitlistEntry,
    WaitlistEntryTag,
    WaitlistNotification,
)
from app.waitlist.texts import Notice

E = WaitlistEntry.__table__
TAG = WaitlistEntryTag.__table__
N = WaitlistNotification.__table__
D = WaitlistDelivery.__table__
O = OutboxMessage.__table__  # noqa: E741
R = Registrant.__table__
GL = GuardianLink.__table__
ST = ConsentStateRow.__table__
PURPOSE = "waitlist"
REF_TYPE = "waitlist_delivery"
ENDED = (EntryStatus.left, EntryStatus.enrolled, EntryStatus.removed)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) a token is stored as."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class EntryFilter:
    """What to list."""

    interest: str | None = None
    tag: str | None = None
    channel: str | None = None
    status: EntryStatus = EntryStatus.active
    guardian_id: uuid.UUID | None = None


def _position() -> Any:
    """The 1-based FIFO place of an active entry (null for others), as a column."""
    other = E.alias("other")
    ahead = select(func.count()).select_from(other).where(
        other.c.status == EntryStatus.active,
        or_(other.c.joined_at < E.c.joined_at, and_(other.c.joined_at == E.c.joined_at, other.c.id <= E.c.id)))
    return case((E.c.status == EntryStatus.active, ahead.scalar_subquery()), else_=None).label("position")


def _entries(dialect: str) -> Select[Any]:
    """SELECT of entry rows with their tags (comma-joined) and position."""
    agg = func.string_agg(TAG.c.tag, ",") if dialect == "postgresql" else func.group_concat(TAG.c.tag, ",")
    tags = select(agg).where(TAG.c.entry_id == E.c.id).scalar_subquery().label("tags_csv")
    return select(E, tags, _position())


def _visible(visibility: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    """The condition that the entry's registrant is visible to the caller."""
    if visibility is None:
        return []
    return [exists().where(R.c.id == E.c.registrant_id, visibility)]


async def active_entry_with_interest(session: AsyncSession, *, registrant_id: uuid.UUID,
                                     interests: list[str]) -> uuid.UUID | None:
    """An active entry of the registrant sharing one of these interests (the earliest)."""
    stmt = (select(E.c.id).where(E.c.registrant_id == registrant_id, E.c.status == EntryStatus.active,
                                 or_(*(E.c[i] == true() for i in interests)))
            .order_by(E.c.joined_at, E.c.id).limit(1))
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_entry(session: AsyncSession, *, values: dict[str, Any], tags: list[str]) -> None:
    """Insert an entry and its tags."""
    await session.execute(insert(E).values(**values))
    if tags:
        await session.execute(insert(TAG), [{"entry_id": values["id"], "tag": t} for t in tags])


async def get_entry(session: AsyncSession, *, entry_id: uuid.UUID, visibility: ColumnElement[bool] | None,
                    for_update: bool = False) -> RowMapping | None:
    """One entry with its tags and position, if the caller may see it."""
    if for_update and dialect_name(session) == "postgresql":
        await session.execute(select(E.c.id).where(E.c.id == entry_id).with_for_update())
    stmt = _entries(dialect_name(session)).where(E.c.id == entry_id, *_visible(visibility))
    return (await session.execute(stmt)).mappings().one_or_none()


ENTRIES_KEYSET = Keyset(((E.c.joined_at, INSTANT), (E.c.id, UUID)))


async def find_entries(session: AsyncSession, *, filters: EntryFilter, visibility: ColumnElement[bool] | None,
                       params: PageParams) -> list[RowMapping]:
    """A page of entries in FIFO order (one more than the limit)."""
    conds = [E.c.status == filters.status, *_visible(visibility)]
    if filters.interest:
        conds.append(E.c[filters.interest] == true())
    if filters.channel:
        conds.append(E.c["by_" + filters.channel] == true())
    if filters.tag:
        conds.append(exists().where(TAG.c.entry_id == E.c.id, TAG.c.tag == filters.tag))
    if filters.guardian_id:
        conds.append(or_(E.c.guardian_id == filters.guardian_id, exists().where(
            GL.c.child_id == E.c.registrant_id, GL.c.guardian_id == filters.guardian_id)))
    after = ENTRIES_KEYSET.after(params)
    if after is not None:
        conds.append(after)
    stmt = _entries(dialect_name(session)).where(*conds).order_by(E.c.joined_at, E.c.id).limit(params.limit + 1)
    return list((await session.execute(stmt)).mappings())


async def end_entry(session: AsyncSession, *, entry_id: uuid.UUID, status: EntryStatus, reason: str,
                    now: datetime) -> bool:
    """Move an active entry to an ended status; False if it was no longer active."""
    result = await session.execute(update(E).where(E.c.id == entry_id, E.c.status == EntryStatus.active)
                                   .values(status=status, end_reason=reason, ended_at=now))
    return result.rowcount == 1


async def entry_for_token(session: AsyncSession, *, hashed: str) -> uuid.UUID | None:
    """The entry a token (from joining or from a notice) belongs to."""
    direct = select(E.c.id).where(E.c.token_hash == hashed)
    via_notice = select(D.c.entry_id).where(D.c.token_hash == hashed)
    return (await session.execute(union_all(direct, via_notice).limit(1))).scalar_one_or_none()


async def channels_still_used(session: AsyncSession, *, registrant_id: uuid.UUID, other_than: uuid.UUID) -> set[str]:
    """Channels another active entry of the registrant still uses (their consent must stay)."""
    rows = (await session.execute(select(E.c.by_email, E.c.by_sms).where(
        E.c.registrant_id == registrant_id, E.c.status == EntryStatus.active, E.c.id != other_than))).all()
    return {c for row in rows for c, on in (("email", row.by_email), ("sms", row.by_sms)) if on}


async def count_since(session: AsyncSession, *, table: str, actor: str, since: datetime) -> tuple[int, datetime | None]:
    """How many entries (or notifications) the caller created since a time, and the oldest of them."""
    t, column = (E, E.c.joined_at) if table == "entry" else (N, N.c.created_at)
    stmt = select(func.count(), func.min(column)).where(t.c.created_by == actor, column >= since)
    count, oldest = (await session.execute(stmt)).one()
    return count, UTCDateTime().process_result_value(oldest, session.get_bind().dialect) if oldest else None


async def insert_notification(session: AsyncSession, *, values: dict[str, Any]) -> None:
    """Insert a notification."""
    await session.execute(insert(N).values(**values))


async def notification_owners(session: AsyncSession, *, system: str) -> frozenset[str]:
    """The token subjects of every client of a system: the creators whose notifications that system owns."""
    rows = await session.execute(select(ApiClient.id).where(ApiClient.system == system))
    return frozenset(f"client:{client_id}" for client_id in rows.scalars())


async def get_notification(session: AsyncSession, *, notification_id: uuid.UUID, owners: frozenset[str] | None,
                           for_update: bool = False) -> RowMapping | None:
    """One notification made by one of `owners` (any when None), locked for the wave or close that follows."""
    stmt = select(N).where(N.c.id == notification_id)
    if owners is not None:
        stmt = stmt.where(N.c.created_by.in_(sorted(owners)))
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).mappings().one_or_none()


async def update_notification(session: AsyncSession, *, notification_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Change a notification's counters or status."""
    await session.execute(update(N).where(N.c.id == notification_id).values(**values))


def _granted(registrant_id: Any, channel: str) -> ColumnElement[bool]:
    """Whether the registrant has a current waitlist grant on the channel."""
    return exists().where(ST.c.registrant_id == registrant_id, ST.c.purpose == PURPOSE, ST.c.channel == channel,
                          ST.c.state == ConsentState.granted)


@dataclass(frozen=True)
class Wave:
    """Who a wave goes to: the notification, its filters, how many, and the SMS limit."""

    notification_id: uuid.UUID
    number: int
    interest: str
    tags: list[str]
    limit: int | None
    sms_since: datetime
    sms_max: int
    visibility: ColumnElement[bool] | None


def _candidates(wave: Wave) -> Select[Any]:
    """Active entries of active registrants with a current consent on a channel they chose, FIFO, not yet notified."""
    email_ok = and_(E.c.by_email == true(), E.c.email.is_not(None), _granted(E.c.registrant_id, "email"))
    sms_ok = and_(E.c.by_sms == true(), E.c.phone.is_not(None), _granted(E.c.registrant_id, "sms"))
    other = E.alias("same_phone")
    recent_sms = (select(func.count()).select_from(D.join(other, other.c.id == D.c.entry_id))
                  .where(D.c.channel == "sms", D.c.created_at >= wave.sms_since, other.c.phone == E.c.phone)
                  .scalar_subquery())
    conds = [E.c.status == EntryStatus.active, E.c[wave.interest] == true(), R.c.status == RegistrantStatus.active,
             or_(email_ok, sms_ok),
             ~exists().where(D.c.notification_id == wave.notification_id, D.c.entry_id == E.c.id)]
    conds += [exists().where(TAG.c.entry_id == E.c.id, TAG.c.tag == t) for t in wave.tags]
    if wave.visibility is not None:
        conds.append(wave.visibility)
    stmt = (select(E.c.id.label("entry_id"), E.c.registrant_id, E.c.email, E.c.phone, R.c.language,
                   email_ok.label("email_ok"), and_(sms_ok, recent_sms < wave.sms_max).label("sms_ok"),
                   sms_ok.label("sms_wanted"))
            .select_from(E.join(R, R.c.id == E.c.registrant_id)).where(*conds).order_by(E.c.joined_at, E.c.id))
    return stmt.limit(wave.limit) if wave.limit else stmt


async def write_wave(session: AsyncSession, *, wave: Wave, notice: Notice, nonce: str, now: datetime,
                     max_attempts: int) -> list[RowMapping]:
    """Write one delivery and one outbox message per picked entry and channel; (entry, registrant, channel) rows.

    Rows with channel `sms_skipped` name entries whose SMS the hourly per-phone limit left out.
    """
    if dialect_name(session) == "postgresql":
        return await _write_wave_postgres(session, wave=wave, notice=notice, nonce=nonce, now=now,
                                          max_attempts=max_attempts)
    return await _write_wave_python(session, wave=wave, notice=notice, nonce=nonce, now=now, max_attempts=max_attempts)


def _text(language: Any, splits: dict[str, Any], token: Any) -> Any:
    """`before || token || after` in the registrant's language (Finnish unless sv or en)."""
    def joined(lang: str) -> Any:
        """One language's text around the token."""
        return literal(splits[lang].before, String) + token + literal(splits[lang].after, String)
    return case((language == "sv", joined("sv")), (language == "en", joined("en")), else_=joined("fi"))


async def _write_wave_postgres(session: AsyncSession, *, wave: Wave, notice: Notice, nonce: str, now: datetime,
                               max_attempts: int) -> list[RowMapping]:
    """The wave in one INSERT ... SELECT statement with data-modifying CTEs."""
    picked = _candidates(wave).cte("picked")
    cols = [picked.c.entry_id, picked.c.registrant_id, picked.c.email, picked.c.phone, picked.c.language]
    channels = union_all(
        select(*cols, literal("email", String).label("channel")).where(picked.c.email_ok),
        select(*cols, literal("sms", String).label("channel")).where(picked.c.sms_ok),
    ).subquery("channels")
    made = select(channels, func.gen_random_uuid().label("id")).subquery("made")
    token = func.encode(func.sha256(func.convert_to(literal(nonce, String) + cast(made.c.id, String), "UTF8")), "hex")
    tokens = select(made, token.label("token")).cte("tokens")
    hashed = func.encode(func.sha256(func.convert_to(tokens.c.token, "UTF8")), "hex")
    at = literal(now, UTCDateTime())
    new_deliveries = insert(D).from_select(
        ["id", "notification_id", "entry_id", "registrant_id", "channel", "wave", "token_hash", "created_at"],
        select(tokens.c.id, literal(wave.notification_id, Uuid()), tokens.c.entry_id, tokens.c.registrant_id,
               tokens.c.channel, literal(wave.number), hashed, at)).cte("new_deliveries")
    link = literal(notice.link_before, String) + tokens.c.token
    email = func.json_build_object(
        "to", tokens.c.email, "subject", _subject(tokens.c.language, notice),
        "text", _text(tokens.c.language, notice.email, tokens.c.token),
        "headers", func.json_build_object("List-Unsubscribe", "<" + link + ">",
                                          "List-Unsubscribe-Post", ONE_CLICK))
    sms = func.json_build_object("to", tokens.c.phone,
                                 "text", _text(tokens.c.language, notice.sms, tokens.c.token))
    new_messages = insert(O).from_select(
        ["id", "kind", "payload", "status", "attempts", "max_attempts", "next_attempt_at", "created_at", "ref_type",
         "ref_id", "registrant_id"],
        select(tokens.c.id, tokens.c.channel, case((tokens.c.channel == "email", email), else_=sms),
               literal(MessageStatus.pending.value, String), literal(0), literal(max_attempts), at, at, literal(REF_TYPE, String),
               cast(tokens.c.id, String), tokens.c.registrant_id)).cte("new_messages")
    skipped = select(picked.c.entry_id, picked.c.registrant_id, literal("sms_skipped", String).label("channel")).where(
        picked.c.sms_wanted, ~picked.c.sms_ok)
    stmt = union_all(select(tokens.c.entry_id, tokens.c.registrant_id, tokens.c.channel), skipped)
    stmt = select(stmt.subquery()).add_cte(new_deliveries).add_cte(new_messages)
    # The planner's cost estimate of this statement crosses the JIT thresholds, and compiling it took ~1.9 s of a
    # ~0.3 s statement: an OLTP statement gains nothing from JIT, so it is off for the rest of this transaction.
    await session.execute(text("SET LOCAL jit = off"))
    return list((await session.execute(stmt)).mappings())


def _subject(language: Any, notice: Notice) -> Any:
    """The subject in the registrant's language."""
    return case((language == "sv", notice.subject["sv"]), (language == "en", notice.subject["en"]),
                else_=literal(notice.subject["fi"], String))


async def _write_wave_python(session: AsyncSession, *, wave: Wave, notice: Notice, nonce: str, now: datetime,
                             max_attempts: int) -> list[RowMapping]:
    """The wave on SQLite: the picked rows, then two executemany inserts."""
    picked = (await session.execute(_candidates(wave))).mappings().all()
    deliveries, messages, out = [], [], []
    for row in picked:
        if row["sms_wanted"] and not row["sms_ok"]:
            out.append({"entry_id": row["entry_id"], "registrant_id": row["registrant_id"], "channel": "sms_skipped"})
        for channel in ("email", "sms"):
            if not row[f"{channel}_ok"]:
                continue
            delivery_id = uuid.uuid4()
            token = hashlib.sha256(f"{nonce}{delivery_id}".encode()).hexdigest()
            lang = row["language"] if row["language"] in notice.subject else "fi"
            link = notice.link_before + token
            if channel == "email":
                split = notice.email[lang]
                payload = {"to": row["email"], "subject": notice.subject[lang],
                           "text": split.before + token + split.after,
                           "headers": unsubscribe_headers(link)}
            else:
                split = notice.sms[lang]
                payload = {"to": row["phone"], "text": split.before + token + split.after}
            deliveries.append({"id": delivery_id, "notification_id": wave.notification_id, "entry_id": row["entry_id"],
                               "registrant_id": row["registrant_id"], "channel": channel, "wave": wave.number,
                               "token_hash": token_hash(token), "created_at": now})
            messages.append({"id": delivery_id, "kind": channel, "payload": payload, "status": MessageStatus.pending,
                             "attempts": 0, "max_attempts": max_attempts, "next_attempt_at": now, "created_at": now,
                             "ref_type": REF_TYPE, "ref_id": str(delivery_id), "registrant_id": row["registrant_id"]})
            out.append({"entry_id": row["entry_id"], "registrant_id": row["registrant_id"], "channel": channel})
    if deliveries:
        await session.execute(insert(D), deliveries)
        await session.execute(insert(O), messages)
    return out  # type: ignore[return-value]


# Built once: the worker runs it before every waitlist message, and building the join per call showed in the drain.
_STILL_ALLOWED = (
    select(D.c.channel, E.c.status, R.c.status, ST.c.state)
    .select_from(D.join(E, E.c.id == D.c.entry_id).join(R, R.c.id == D.c.registrant_id)
                 .outerjoin(ST, and_(ST.c.registrant_id == D.c.registrant_id, ST.c.purpose == PURPOSE,
                                     ST.c.channel == D.c.channel)))
    .where(D.c.id == bindparam("delivery_id"))
)


async def delivery_still_allowed(session: AsyncSession, *, delivery_id: uuid.UUID) -> str | None:
    """Why a queued notice may no longer go (entry ended, registrant not active, consent gone), or None."""
    row = (await session.execute(_STILL_ALLOWED, {"delivery_id": delivery_id})).first()
    if row is None:
        return "the waitlist delivery no longer exists"
    channel, entry_status, registrant_status, state = row
    if registrant_status != RegistrantStatus.active:
        return f"the registrant is {registrant_status}"
    if entry_status != EntryStatus.active:
        return f"the waitlist entry is {entry_status}"
    if state != ConsentState.granted:
        return f"no current waitlist consent on {channel}"
    return None


async def stats(session: AsyncSession, *, since: datetime, now: datetime) -> dict[str, Any]:
    """Counts for the dashboard."""
    by = []
    for interest in ("cancellations", "enrolments"):
        for channel in ("email", "sms"):
            count = (await session.execute(select(func.count()).select_from(E).where(
                E.c.status == EntryStatus.active, E.c[interest] == true(), E.c["by_" + channel] == true()))).scalar_one()
            by.append({"interest": interest, "channel": channel, "entries": count})
    active = (await session.execute(select(func.count()).select_from(E)
                                    .where(E.c.status == EntryStatus.active))).scalar_one()
    median = None
    if active:
        joined = (await session.execute(select(E.c.joined_at).where(E.c.status == EntryStatus.active)
                                        .order_by(E.c.joined_at, E.c.id).offset(active // 2).limit(1))).scalar_one()
        median = round((now - joined).total_seconds() / 86400, 2)
    outcome = dict((await session.execute(
        select(O.c.status, func.count()).where(O.c.ref_type == REF_TYPE, O.c.created_at >= since)
        .group_by(O.c.status))).all())
    left = (await session.execute(select(
        func.count(), func.count(case((E.c.ended_at >= since, 1)))).where(E.c.end_reason == "unsubscribe"))).one()
    return {"active_entries": active, "by_interest_channel": by, "median_wait_days": median,
            "notices_sent_30d": outcome.get(MessageStatus.sent, 0),
            "notices_failed_30d": outcome.get(MessageStatus.failed, 0),
            "notices_pending": outcome.get(MessageStatus.pending, 0) + outcome.get(MessageStatus.sending, 0),
            "unsubscribes_30d": left[1], "unsubscribes_total": left[0]}

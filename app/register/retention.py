"""Storage limitation (GDPR Art. 5(1)(e)): every data category's rule, from its true starting point.

Each domain declares its rules next to its data (`RULES` in its `retention.py`): the category, the table, the
start event the period is counted from, and the action (delete, or anonymise keeping what is not personal).
The register profile gives each category its period; the rule computes the one bound its query uses, so what
`rekisteri purge` prints is what it does. `app.wiring` collects the rules (and the holds other domains put on a
registrant's data, such as an open request), and `purge` runs them in batches of bounded size, one commit each.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import isodate
from sqlalchemy import Column, ColumnElement, Table, and_, delete, event, false, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principal import SYSTEM, Principal
from app.core import clock
from app.core.humanize import duration_words
from app.core.errors import Conflict
from app.db.repository import among
from app.db.session import Database
from app.register.schemas import LegalBasis, RegisterProfile, StartEvent

DEFAULT_BATCH = 5000
DEFAULT_ZONE = "Europe/Helsinki"


class Action(StrEnum):
    """What a rule does to a row past its period."""

    delete = "delete"
    anonymise = "anonymise"  # personal fields blanked; what others point at, and non-personal counts, stay


@dataclass(frozen=True)
class Hold:
    """A reason another domain keeps a registrant's data past its period, e.g. an open request (Art. 12(3))."""

    reason: str
    keeps: Callable[[Any], ColumnElement[bool]]  # given a registrant-id column: "this registrant is held"
    # The categories it keeps; None: every rule that acts per registrant.
    categories: frozenset[str] | None = None


@dataclass(frozen=True)
class RuleRun:
    """One rule's run: the bound its query uses and what else it needs."""

    bound: datetime  # rows whose start event lies before this instant are acted on
    start: StartEvent
    now: datetime
    batch: int
    holds: tuple[Hold, ...] = ()
    # Where the last batch's window of ids ended, so each batch reads only its own range of the primary key.
    cursor: dict[str, Any] = field(default_factory=dict)


Count = Callable[[AsyncSession, RuleRun], Awaitable[int]]
Skipped = Callable[[AsyncSession, RuleRun], Awaitable[dict[str, int]]]
Tally = Callable[[AsyncSession, RuleRun], Awaitable[tuple[int, dict[str, int]]]]


@dataclass(frozen=True)
class RetentionRule:
    """One data category in one table: when its period starts, and what happens to a row past it.

    `count` counts the rows past the bound that would be acted on; `act` acts on at most `run.batch` of them and
    returns how many; `skipped` counts rows past the bound that a hold keeps, by reason. `tally`, where a rule
    has it, gives both counts from one reading of the table, and the purge uses it instead of the two.
    """

    category: str
    table: str
    starts: tuple[StartEvent, ...]  # the first is the default; the profile may pick another (`retention_start`)
    action: Action
    count: Count
    act: Count
    skipped: Skipped | None = None
    tally: Tally | None = None
    also: tuple[str, ...] = ()  # tables whose rows go (or are blanked) with the main table's
    # Used when the profile names no period for the category (operational data such as login throttles).
    default_retention: str | None = None
    # The shortest period a statute demands, whatever the profile says (Kirjanpitolaki 1336/1997 2:10 §).
    legal_minimum: str | None = None

    @property
    def start(self) -> StartEvent:
        """The default start event."""
        return self.starts[0]

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table the rule acts on."""
        return (self.table, *self.also)


def held(run: RuleRun, category: str, registrant_id: Any) -> ColumnElement[bool]:
    """Whether any hold that applies to the category keeps this registrant's rows."""
    conditions = [h.keeps(registrant_id) for h in run.holds if h.categories is None or category in h.categories]
    return or_(*conditions) if conditions else false()


_ID_SPACE = 2**128


def _window(run: RuleRun, fill: float = 1.0) -> tuple[int, int] | None:
    """The next window of the (uuid) id space, [low, high); None once the whole space is done.

    The space is cut into as many windows as batches the count expects, so each window holds about `fill` of a
    batch of rows.
    """
    low = run.cursor.get("low", 0)
    if low >= _ID_SPACE:
        return None
    windows = max(1, -(-run.cursor.get("expected", 0) // max(1, int(run.batch * fill))))
    return low, min(_ID_SPACE, low + -(-_ID_SPACE // windows))


def _within(column: Any, window: tuple[int, int]) -> list[ColumnElement[bool]]:
    low, high = window
    return [column >= uuid.UUID(int=low), *([column < uuid.UUID(int=high)] if high < _ID_SPACE else [])]


async def pick_ids(session: AsyncSession, run: RuleRun, id_column: Any, *conditions: Any) -> list[Any]:
    """The ids of the rows meeting the conditions in the next window of the (uuid) id space.

    Each batch reads about a batch of rows by a range of the primary key, never the rows already done and never
    the whole table again.
    """
    window = _window(run)
    if window is None:
        run.cursor["more"] = False
        return []
    stmt = select(id_column).where(*conditions, *_within(id_column, window))
    run.cursor.update(low=window[1], more=window[1] < _ID_SPACE)
    return list((await session.execute(stmt)).scalars())


async def registrants_in_window(session: AsyncSession, table: Table, window: tuple[int, int],
                                rows: ColumnElement[bool], free: Callable[[Any], ColumnElement[bool]],
                                ended: ColumnElement[bool] | None = None) -> list[tuple[Any, int]]:
    """The registrants in a window of the registrant id space with rows of `table` meeting `rows`, and how many:
    those whose rows taken together meet `ended` (a HAVING clause) and who are `free` (no hold keeps them).

    What is asked of a registrant is the same for all their rows, so it is asked once per registrant, not once
    per row. A statement of its own, apart from the one that acts on the rows: PostgreSQL cannot tell how many
    rows a narrow range of uuids holds, and for a join it sometimes picked a plan that asked about the
    registrant again for every row.
    """
    owner = table.c.registrant_id
    if ended is None:  # only the rows meeting `rows` need reading
        who = (select(owner.label("registrant_id"), func.count().label("rows")).where(*_within(owner, window), rows)
               .group_by(owner)).subquery("who")
    else:  # `ended` is asked of all their rows
        due = func.count().filter(rows)
        who = (select(owner.label("registrant_id"), due.label("rows")).where(*_within(owner, window))
               .group_by(owner).having(and_(due > 0, ended))).subquery("who")
    found = await session.execute(select(who.c.registrant_id, who.c.rows).where(free(who.c.registrant_id)))
    return [(registrant_id, count) for registrant_id, count in found]


def fill_batch(people: Sequence[tuple[Any, int]], batch: int) -> list[Any]:
    """The first registrants whose rows (registrant, how many) fit in a batch together."""
    chosen, room = [], batch
    for registrant_id, count in people:
        if count > room:
            break
        chosen.append(registrant_id)
        room -= count
    return chosen


def applicable(run: RuleRun, category: str, registrant_id: Any) -> list[tuple[str, ColumnElement[bool]]]:
    """Each hold that applies to the category, as (reason, condition on the registrant-id column)."""
    return [(h.reason, h.keeps(registrant_id)) for h in run.holds if h.categories is None or category in h.categories]


async def tally_rows(session: AsyncSession, table: Table, past: ColumnElement[bool], free: ColumnElement[bool],
                     reasons: Sequence[tuple[str, ColumnElement[bool]]]) -> tuple[int, dict[str, int]]:
    """Of the rows past the bound: how many are free to act on, and how many each reason keeps (a row kept for two
    reasons counts under both), from one reading of them."""
    row = (await session.execute(select(func.count().filter(free), *(func.count().filter(condition)
                                                                      for _, condition in reasons))
                                 .select_from(table).where(past))).one()
    return row[0], {reason: count for (reason, _), count in zip(reasons, row[1:], strict=True) if count}


def deleting_rule(category: str, table: Table, past: Callable[[RuleRun], ColumnElement[bool]], *,
                  starts: tuple[StartEvent, ...], dependents: Sequence[Column[Any]] = (),
                  kept: Sequence[tuple[str, ColumnElement[bool]]] = (), legal_minimum: str | None = None,
                  ended: Callable[[RuleRun], ColumnElement[bool] | None] | None = None) -> RetentionRule:
    """A rule that deletes the rows of `table` past the bound, with their `dependents` (foreign-key columns to its id).

    `past` says which rows are past the bound. `ended`, when it gives a condition, is what a registrant's rows in
    the table must meet taken together (a HAVING clause on them grouped by `registrant_id`, e.g. the last of them
    is before the bound) for any of them to go. A row goes unless a hold on its registrant (`registrant_id`) or
    one of the `kept` conditions keeps it; the skipped counts name the `kept` reasons first, then the holds.
    Batches go by windows of the registrant id (the table needs an index that starts with `registrant_id`).
    """
    key, registrant = table.c.id, table.c.registrant_id

    def not_kept() -> list[ColumnElement[bool]]:
        return [~condition for _, condition in kept]

    async def tally(session: AsyncSession, run: RuleRun) -> tuple[int, dict[str, int]]:
        having = ended(run) if ended else None
        if having is None:
            return await tally_rows(session, table, past(run), and_(~held(run, category, registrant), *not_kept()),
                                    [*kept, *applicable(run, category, registrant)])
        # Each registrant's rows counted together, so what is asked of the registrant is asked once for them all.
        each = (select(registrant.label("registrant_id"), func.count().filter(past(run)).label("past"),
                       func.count().filter(and_(past(run), *not_kept())).label("free"),
                       *(func.count().filter(and_(past(run), condition)).label(f"kept_{i}")
                         for i, (_, condition) in enumerate(kept)))
                .group_by(registrant).having(having).subquery("each"))
        holds = applicable(run, category, each.c.registrant_id)
        row = (await session.execute(select(
            func.sum(each.c.free).filter(~held(run, category, each.c.registrant_id)),
            *(func.sum(each.c[f"kept_{i}"]) for i in range(len(kept))),
            *(func.sum(each.c.past).filter(condition) for _, condition in holds)))).one()
        counts = [int(n or 0) for n in row]
        return counts[0], {reason: n for (reason, _), n in zip([*kept, *holds], counts[1:], strict=True) if n}

    async def count(session: AsyncSession, run: RuleRun) -> int:
        return (await tally(session, run))[0]

    async def skipped(session: AsyncSession, run: RuleRun) -> dict[str, int]:
        return (await tally(session, run))[1]

    async def act(session: AsyncSession, run: RuleRun) -> int:
        # A window of the registrant id space holds about nine tenths of a batch, so its registrants usually go
        # in one batch; when they do not, the window is read again for the rest.
        window = _window(run, fill=0.9)
        if window is None:
            run.cursor["more"] = False
            return 0
        rows = and_(past(run), *not_kept())
        people = await registrants_in_window(session, table, window, rows,
                                             lambda registrant_id: ~held(run, category, registrant_id),
                                             ended(run) if ended else None)
        chosen = fill_batch(people, run.batch)
        done = 0
        if chosen and not dependents:
            # The rows of whole registrants, by the registrant index the window was read with.
            done = (await session.execute(delete(table).where(among(session, registrant, chosen), rows))).rowcount
        elif people:
            # A registrant with more rows than a batch holds goes a batch at a time, by the ids.
            whose = among(session, registrant, chosen) if chosen else registrant == people[0][0]
            ids = list((await session.execute(select(key).where(whose, rows).limit(run.batch))).scalars())
            for column in dependents:
                await session.execute(delete(column.table).where(among(session, column, ids)))
            await session.execute(delete(table).where(among(session, key, ids)))
            done = len(ids)
        finished = len(chosen) == len(people)
        run.cursor.update(low=window[1] if finished else window[0], more=not finished or window[1] < _ID_SPACE)
        return done

    return RetentionRule(category=category, table=table.name, starts=starts, action=Action.delete, count=count,
                         act=act, skipped=skipped, tally=tally, also=tuple(column.table.name for column in dependents),
                         legal_minimum=legal_minimum)


@dataclass(frozen=True)
class Period:
    """A category's period as the profile (or the rule's default) sets it, and its start event."""

    duration: str
    start: StartEvent
    statute: str | None = None


def period_for(profile: RegisterProfile | None, rule: RetentionRule) -> Period | None:
    """The period and start event of a rule; None when neither the profile nor the rule sets one."""
    found = profile.category(rule.category) if profile else None
    if found is None:
        return Period(rule.default_retention, rule.start) if rule.default_retention else None
    durations = [found.retention]
    if found.legal_basis == LegalBasis.legal_obligation and found.minimum_retention:
        durations.append(found.minimum_retention)
    if rule.legal_minimum:
        durations.append(rule.legal_minimum)
    start = StartEvent(found.retention_start) if found.retention_start in rule.starts else rule.start
    return Period(max(durations, key=_length), start, found.statute)


# The start event in words, after the duration ("3 vuotta asiakassuhteen päättymisestä"), in each language.
START_WORDS: dict[StartEvent, dict[str, str]] = {
    StartEvent.relationship_end: {"fi": "asiakassuhteen päättymisestä", "en": "after the customer relationship ends",
                                  "sv": "efter att kundförhållandet har upphört"},
    StartEvent.last_use: {"fi": "viimeisestä käytöstä", "en": "after the last use",
                          "sv": "efter den senaste användningen"},
    StartEvent.collected: {"fi": "tietojen keräämisestä", "en": "after the data is collected",
                           "sv": "efter att uppgifterna samlades in"},
    StartEvent.course_end: {"fi": "kurssin päättymisestä", "en": "after the course ends",
                            "sv": "efter att kursen har avslutats"},
    StartEvent.financial_year_end: {"fi": "sen vuoden lopusta, jonka aikana tilikausi päättyi",
                                    "en": "from the end of the year in which the financial period ended",
                                    "sv": "från utgången av det år då räkenskapsperioden gick ut"},
    StartEvent.financial_period_end: {"fi": "tilikauden päättymisestä", "en": "from the end of the financial period",
                                      "sv": "från räkenskapsperiodens utgång"},
    StartEvent.withdrawal: {"fi": "suostumuksen peruuttamisesta tai muusta päättymisestä",
                            "en": "after the consent is withdrawn or otherwise ends",
                            "sv": "efter att samtycket har återkallats eller annars upphört"},
    StartEvent.joining: {"fi": "listalle liittymisestä", "en": "after joining the list",
                         "sv": "efter anslutningen till listan"},
    StartEvent.leaving: {"fi": "listalta poistumisesta", "en": "after leaving the list",
                         "sv": "efter att personen har lämnat listan"},
    StartEvent.completion: {"fi": "asian käsittelyn päättymisestä", "en": "after the matter is closed",
                            "sv": "efter att ärendet har avslutats"},
    StartEvent.deactivation: {"fi": "käyttöoikeuden päättymisestä", "en": "after access ends",
                              "sv": "efter att åtkomsten har upphört"},
}


def period_words(period: Period, lang: str) -> str:
    """The period and its start event in words: "3 years after the customer relationship ends" (GDPR Art. 13(2)(a))."""
    return f"{duration_words(period.duration, lang)} {START_WORDS[period.start][lang]}"


def category_periods(profile: RegisterProfile, rules: Sequence[RetentionRule]) -> dict[str, Period]:
    """Each profile category's period and start event, as its rule applies them (the first rule naming it)."""
    found: dict[str, Period] = {}
    for rule in rules:
        if rule.category not in found and profile.category(rule.category) is not None:
            period = period_for(profile, rule)
            if period is not None:
                found[rule.category] = period
    return found


def uncovered(profile: RegisterProfile, rules: Sequence[RetentionRule]) -> list[tuple[int, str]]:
    """The profile's categories (index, code) that no rule enforces: their promise would be kept by nobody."""
    enforced = {rule.category for rule in rules}
    return [(i, c.code) for i, c in enumerate(profile.data_categories) if c.code not in enforced]


def _length(duration: str) -> timedelta:
    anchor = datetime(2000, 1, 1)
    return (anchor + isodate.parse_duration(duration)) - anchor


def financial_period_end(profile: RegisterProfile | None) -> tuple[int, int]:
    """The month and day the financial period ends (default 31.12)."""
    text = profile.financial_period_end if profile else "12-31"
    month, day = (int(part) for part in text.split("-"))
    return month, day


def zone_of(profile: RegisterProfile | None) -> ZoneInfo:
    """The controller's time zone (days and years are counted on its calendar)."""
    return ZoneInfo(profile.rights_policy.time_zone if profile else DEFAULT_ZONE)


def bound_for(profile: RegisterProfile | None, period: Period, now: datetime) -> datetime:
    """The instant the rule's query compares the start event with: rows that started before it are past.

    Periods are calendar periods on the controller's calendar. For the Accounting Act (Kirjanpitolaki 1336/1997
    2:10 §) the bound is on the row's own date: a voucher goes once six years have passed from the end of the
    year in which its financial period ended; the books once ten years have passed from the end of the period.
    """
    zone = zone_of(profile)
    local_now = now.astimezone(zone)
    back = (local_now.replace(tzinfo=None) - isodate.parse_duration(period.duration))
    if period.start == StartEvent.financial_year_end:
        # The period ended in year Y; its end of year + the duration must have passed: Y <= back.year - 1.
        month, day = financial_period_end(profile)
        return _midnight(date(back.year - 1, month, day) + timedelta(days=1), zone)
    if period.start == StartEvent.financial_period_end:
        month, day = financial_period_end(profile)
        last_end = date(back.year, month, day)
        if datetime.combine(last_end + timedelta(days=1), time()) > back:
            last_end = date(back.year - 1, month, day)
        return _midnight(last_end + timedelta(days=1), zone)
    if _has_calendar_part(period.duration):
        # Periods of months and years end with a day: the whole day stays, so the bound is that day's start.
        return _midnight(back.date(), zone)
    return back.replace(tzinfo=zone)


def _has_calendar_part(duration: str) -> bool:
    parsed = isodate.parse_duration(duration)
    return isinstance(parsed, isodate.Duration) and bool(parsed.years or parsed.months)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


@dataclass
class RuleOutcome:
    """What a rule did (or, in a dry run, would do)."""

    rule: RetentionRule
    period: Period | None
    bound: datetime | None
    acted: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    note: str | None = None


Progress = Callable[[RetentionRule, int, int | None], None]  # rule, rows so far, rows in all (None: unknown)


async def run_rule(session: AsyncSession, rule: RetentionRule, *, profile: RegisterProfile | None, now: datetime,
                   dry_run: bool, batch: int = DEFAULT_BATCH, holds: Sequence[Hold] = (),
                   progress: Progress | None = None, commit: bool = True) -> RuleOutcome:
    """Run one rule: count, then (unless dry) act in batches, committing each so nothing is held long or lost."""
    period = period_for(profile, rule)
    if period is None:
        if progress:
            progress(rule, 0, 0)
        return RuleOutcome(rule, None, None, note="no retention period for this category in the register profile")
    bound = bound_for(profile, period, now)
    run = RuleRun(bound=bound, start=period.start, now=now, batch=batch, holds=tuple(holds))
    if rule.tally:
        total, skipped = await rule.tally(session, run)
    else:
        total, skipped = await rule.count(session, run), await rule.skipped(session, run) if rule.skipped else {}
    run.cursor["expected"] = total
    outcome = RuleOutcome(rule, period, bound, skipped=skipped)
    if progress:
        progress(rule, 0, total)
    if dry_run or not total:  # nothing past its period: nothing to read batch by batch
        outcome.acted = total
        if progress:
            progress(rule, total, total)
        return outcome
    while True:
        done = await rule.act(session, run)
        outcome.acted += done
        if commit:
            await session.commit()
        if progress:
            progress(rule, outcome.acted, max(total, outcome.acted))
        if done < batch and not run.cursor.get("more"):
            return outcome




async def purge(session: AsyncSession, *, rules: Sequence[RetentionRule], dry_run: bool, holds: Sequence[Hold] = (),
                now: datetime | None = None, batch: int = DEFAULT_BATCH, actor: Principal = SYSTEM,
                progress: Progress | None = None, commit: bool = True) -> list[RuleOutcome]:
    """Apply every rule (or, dry, only count); one audit entry per category with its counts, no personal data.

    `now` may be a later date only in a dry run: what the rules will have removed by then.
    """
    from app.register.service import current_profile  # noqa: PLC0415 - the service renders periods with this module

    profile = await current_profile(session)
    moment = now or clock.utcnow()
    outcomes = []
    for rule in rules:
        outcomes.append(await run_rule(session, rule, profile=profile, now=moment, dry_run=dry_run, batch=batch,
                                       holds=holds, progress=progress, commit=commit))
    by_category: dict[str, list[RuleOutcome]] = {}
    for outcome in outcomes:
        by_category.setdefault(outcome.rule.category, []).append(outcome)
    for category, parts in by_category.items():
        audit.record(session, actor=actor, action="retention.purge", resource_type="data_category", details={
            "category": category, "dry_run": dry_run, "as_of": moment.isoformat(),
            "tables": {o.rule.table: {"action": o.rule.action.value, "acted": o.acted, "skipped": o.skipped,
                                      "bound": o.bound.isoformat() if o.bound else None} for o in parts}})
    if commit:
        await session.commit()
    return outcomes


def _plain_plans(_session: Any, _transaction: Any, connection: Any) -> None:
    """Each purge transaction on PostgreSQL plans without JIT compilation and parallel workers, with room to hash.

    A batch's statements run for milliseconds; compiling them (JIT, ~25 ms) or starting workers for them (~20 ms
    on two cores) cost more than the statements, two hundred times over for a million rows. A rule's tally groups
    the table by registrant: in the default 4 MB of work memory PostgreSQL walked the index for 100,000 of them
    instead of hashing (2.5 s rather than 0.9 s when a person's records lie apart).
    """
    connection.exec_driver_sql("SELECT set_config('jit', 'off', true), "
                               "set_config('max_parallel_workers_per_gather', '0', true), "
                               "set_config('work_mem', '64MB', true)")


# "rekisteri purge" in ASCII, folded to a signed 64-bit key (the migration lock uses another).
PURGE_LOCK_KEY = int.from_bytes(b"rk-purge", "big") - 2**63


class PurgeRunning(Conflict):
    """Another purge holds the lock."""


async def purge_job(database: Database, *, rules: Sequence[RetentionRule], holds: Sequence[Hold], dry_run: bool,
                    now: datetime | None = None, batch: int = DEFAULT_BATCH,
                    progress: Progress | None = None) -> list[RuleOutcome]:
    """`rekisteri purge`: on PostgreSQL under a session advisory lock, so two purges never act at once."""
    async with database.engine.connect() as lock:
        locking = lock.dialect.name == "postgresql" and not dry_run
        if locking:
            got = (await lock.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": PURGE_LOCK_KEY})).scalar()
            await lock.commit()
            if not got:
                raise PurgeRunning("another purge is running; nothing was done (try again when it has finished)")
        try:
            async with database.sessionmaker() as session:
                if lock.dialect.name == "postgresql":
                    event.listen(session.sync_session, "after_begin", _plain_plans)
                return await purge(session, rules=rules, holds=holds, dry_run=dry_run, now=now, batch=batch,
                                   progress=progress)
        finally:
            if locking:
                await lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PURGE_LOCK_KEY})
                await lock.commit()

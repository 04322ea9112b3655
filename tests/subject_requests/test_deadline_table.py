"""Due dates over a whole year of receipt days, per Regulation 1182/71 Art. 3 on the Helsinki calendar.

An independent oracle (Finnish public holidays written out by hand, not taken from the `holidays`
package) is checked against the deadline functions for every day of 2026 at both ends of the local day,
and against what filing and extending store and read back on the database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import calendar
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.auth.principal import Principal
from app.auth.roles import ROLE_SCOPES, Role
from app.core import clock as service_clock
from app.core.config import Settings
from app.subject_requests import repository as repo
from app.subject_requests import service
from app.subject_requests.deadlines import LocalCalendar, due, extended
from app.subject_requests.schemas import ExtendAction, RequestCreate

HELSINKI = ZoneInfo("Europe/Helsinki")
# Vapaapäivät in Finland, 2026-2027: the day after receipt up to three months later stays inside these years.
FINNISH_HOLIDAYS = {
    date(2026, 1, 1), date(2026, 1, 6), date(2026, 4, 3), date(2026, 4, 5), date(2026, 4, 6), date(2026, 5, 1),
    date(2026, 5, 14), date(2026, 5, 24), date(2026, 6, 19), date(2026, 6, 20), date(2026, 10, 31),
    date(2026, 12, 6), date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26),
    date(2027, 1, 1), date(2027, 1, 6), date(2027, 3, 26), date(2027, 3, 28), date(2027, 3, 29), date(2027, 5, 1),
    date(2027, 5, 6), date(2027, 5, 16), date(2027, 6, 25), date(2027, 6, 26), date(2027, 11, 6),
    date(2027, 12, 6), date(2027, 12, 24), date(2027, 12, 25), date(2027, 12, 26),
}
YEAR_2026 = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
CAL = LocalCalendar()


def same_date_later(day: date, months: int) -> date:
    """Art. 3(2)(c): the same date `months` later, or the last day of that month."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def working(day: date) -> date:
    """Art. 3(4): a Saturday, Sunday or public holiday moves the end to the next working day."""
    while day.weekday() >= 5 or day in FINNISH_HOLIDAYS:
        day += timedelta(days=1)
    return day


def end_of(day: date) -> datetime:
    """The expiry of the last hour of a Helsinki day, in UTC."""
    return datetime.combine(day, time(23, 59, 59, 999999), tzinfo=HELSINKI).astimezone(UTC)


def oracle(received_local_day: date) -> tuple[datetime, datetime]:
    """(due, extended due) of a request received on a Helsinki day."""
    first = same_date_later(received_local_day, 1)
    return end_of(working(first)), end_of(working(same_date_later(first, 2)))


def test_the_oracle_knows_every_holiday_of_the_package() -> None:
    import holidays
    assert set(holidays.country_holidays("FI", years=[2026, 2027])) == FINNISH_HOLIDAYS


@pytest.mark.parametrize(("received", "due_day", "extended_day", "why"), [
    ("2026-01-31T12:00:00+02:00", date(2026, 3, 2), date(2026, 4, 28), "28.2. is a Saturday; 28.4. a Tuesday"),
    ("2026-01-30T23:00:00Z", date(2026, 3, 2), date(2026, 4, 28), "already 31.1. in Helsinki"),
    ("2026-01-30T21:59:59Z", date(2026, 3, 2), date(2026, 4, 28),
     "still 30.1. in Helsinki: the month ends 28.2., two further months from it end 28.4."),
    ("2026-03-31T10:00:00+03:00", date(2026, 4, 30), date(2026, 6, 30), "31.4. does not exist"),
    ("2026-03-03T12:00:00+02:00", date(2026, 4, 7), date(2026, 6, 3), "3.4. Good Friday, 5.-6.4. Easter"),
    ("2026-04-01T12:00:00+03:00", date(2026, 5, 4), date(2026, 7, 1), "1.5. May Day, then a weekend"),
    ("2026-04-14T12:00:00+03:00", date(2026, 5, 15), date(2026, 7, 14), "14.5. Ascension Day"),
    ("2026-05-19T12:00:00+03:00", date(2026, 6, 22), date(2026, 8, 19), "19.6. Midsummer Eve, 20.6. Midsummer"),
    ("2026-09-30T12:00:00+03:00", date(2026, 10, 30), date(2026, 12, 30), "30.10. is an ordinary Friday"),
    ("2026-10-01T12:00:00+03:00", date(2026, 11, 2), date(2027, 1, 4), "1.11. a Sunday; 1.1.2027 New Year"),
    ("2026-07-31T12:00:00+03:00", date(2026, 8, 31), date(2026, 11, 2), "extended to 31.10., All Saints' Day"),
    ("2026-11-06T12:00:00+02:00", date(2026, 12, 7), date(2027, 2, 8), "6.12. Independence Day (Sunday)"),
    ("2026-11-24T12:00:00+02:00", date(2026, 12, 28), date(2027, 2, 24), "24.-27.12. Christmas and a weekend"),
    ("2026-12-01T12:00:00+02:00", date(2027, 1, 4), date(2027, 3, 1), "1.1. New Year, 1.3.2027 a Monday"),
    ("2026-12-31T12:00:00+02:00", date(2027, 2, 1), date(2027, 3, 31), "31.1.2027 a Sunday; 31.3. a Wednesday"),
    ("2026-03-29T00:30:00+02:00", date(2026, 4, 29), date(2026, 6, 29), "the night summer time begins"),
    ("2026-10-25T03:30:00+03:00", date(2026, 11, 25), date(2027, 1, 25), "the night summer time ends"),
    ("2026-12-28T12:00:00+02:00", date(2027, 1, 28), date(2027, 3, 30), "28.3.2027 Easter, 29.3. Easter Monday"),
])
def test_worked_examples(received: str, due_day: date, extended_day: date, why: str) -> None:
    at = datetime.fromisoformat(received.replace("Z", "+00:00"))
    first = due(at, "P1M", CAL)
    assert (first.day, first.at) == (due_day, end_of(due_day)), why
    later = extended(at, "P1M", "P2M", CAL)
    assert (later.day, later.at) == (extended_day, end_of(extended_day)), why


@pytest.mark.parametrize("edge", [time(0, 0, 30), time(12, 0), time(23, 59, 30)])
def test_every_receipt_day_of_2026(edge: time) -> None:
    for day in YEAR_2026:
        received = datetime.combine(day, edge, tzinfo=HELSINKI)
        for sent_as in (received, received.astimezone(UTC), received.astimezone(ZoneInfo("America/New_York"))):
            expected_due, expected_extended = oracle(day)
            assert due(sent_as, "P1M", CAL).at == expected_due, sent_as
            assert extended(sent_as, "P1M", "P2M", CAL).at == expected_extended, sent_as


@pytest.mark.commits
async def test_every_receipt_day_of_2026_is_stored_and_extended_on_the_database(app, db, controller, policy) -> None:
    """File and extend one request per day of 2026 (at noon, and at the DST edges) through the service."""
    actor = Principal(kind="user", id=uuid.UUID(controller.id), name="Controller", role=Role.controller,
                      scopes=frozenset(ROLE_SCOPES[Role.controller]))
    settings = Settings()
    times = [datetime.combine(day, time(12, 0), tzinfo=HELSINKI) for day in YEAR_2026]
    times += [datetime(2026, 3, 29, 0, 30, tzinfo=HELSINKI), datetime(2026, 3, 29, 4, 30, tzinfo=HELSINKI),
              datetime(2026, 10, 25, 2, 30, tzinfo=HELSINKI), datetime(2026, 10, 25, 23, 59, tzinfo=HELSINKI)]
    try:
        for received in times:
            service_clock.freeze(received + timedelta(hours=1))
            async with db.sessionmaker() as session:
                data = RequestCreate.model_validate({"type": "access", "requester": {"name": "Maija"},
                                                     "channel": "email", "received_at": received.isoformat()})
                made = await service.file_request(session, actor=actor, data=data, allowlist=[])
                await service.transition(session, actor=actor, request_id=made.id, settings=settings,
                                         wiring=app.state.wiring,
                                         body=ExtendAction(action="extend", reason="many records",
                                                           person_informed=True, informed_at=received))
                await session.commit()
            async with db.sessionmaker() as session:
                row = await repo.get(session, request_id=made.id, creator=None)
            expected_due, expected_extended = oracle(received.date())
            assert made.due_at == row["original_due_at"] == expected_due, received
            assert made.due_on == CAL.day_of(expected_due)
            assert row["due_at"] == expected_extended, received
    finally:
        service_clock.reset()

"""Deadlines of data-subject requests per Regulation (EEC, Euratom) No 1182/71, on the local calendar.

GDPR Art. 12(3): an answer within one month of receipt, extendable by two further months. The EDPB
(Guidelines 01/2022 on the right of access, on time limits) counts these periods under Regulation 1182/71:
- Art. 3(1): the day of receipt is not counted; the period starts the next day.
- Art. 3(2)(c): a period of months ends with the expiry of the last hour of the day which, in the last
  month, has the same date as the day of receipt; without such a day (31.1. + one month), of the last day
  of that month.
- Art. 3(4): when that last day is a public holiday, a Saturday or a Sunday, the period ends with the
  expiry of the last hour of the following working day.
- Art. 2(1): public holidays are those of the Member State, here the profile's country (the `holidays`
  package; Finland by default), and days are counted on its local time (the profile's zone, Europe/Helsinki
  by default), so the same instant has the same deadline whatever offset it was sent with.
Every deadline is stored in UTC as the last microsecond of the local day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import isodate

DEFAULT_TIME_ZONE = "Europe/Helsinki"
DEFAULT_HOLIDAYS = "FI"
_END_OF_DAY = time(23, 59, 59, 999999)


def add_months(at: datetime, months: int) -> datetime:
    """The same day `months` later, or the month's last day when it has no such day (31.1. → 28./29.2.)."""
    return datetime.combine(shift_months(at.date(), months), at.timetz())


def shift_months(day: date, months: int) -> date:
    """1182/71 Art. 3(2)(c): the day with the same date `months` later, or that month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def add_duration(at: datetime, duration: str) -> datetime:
    """`at` plus an ISO 8601 duration of the profile (P1M, P2M, P30D...), months counted on the calendar."""
    parsed = isodate.parse_duration(duration)
    if isinstance(parsed, timedelta):
        return at + parsed
    months = int(parsed.years) * 12 + int(parsed.months)
    return add_months(at, months) + parsed.tdelta


def _last_day(start: date, duration: str) -> date:
    """The last day of a period of `duration` that runs from the day `start` (not itself counted)."""
    parsed = isodate.parse_duration(duration)
    if isinstance(parsed, timedelta):
        return start + timedelta(days=parsed.days)
    return shift_months(start, int(parsed.years) * 12 + int(parsed.months)) + timedelta(days=parsed.tdelta.days)


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> frozenset[date]:
    """The public holidays of a country in a year (1182/71 Art. 2(1))."""
    return frozenset(holidays.country_holidays(country, years=year))


@dataclass(frozen=True)
class LocalCalendar:
    """The calendar deadlines are counted on: a time zone and a country's public holidays."""

    time_zone: str = DEFAULT_TIME_ZONE
    country: str = DEFAULT_HOLIDAYS

    @property
    def zone(self) -> ZoneInfo:
        """The time zone."""
        return ZoneInfo(self.time_zone)

    def day_of(self, at: datetime) -> date:
        """The local day an instant falls on."""
        return at.astimezone(self.zone).date()

    def is_working_day(self, day: date) -> bool:
        """Neither a Saturday, a Sunday nor a public holiday (1182/71 Art. 3(4))."""
        return day.weekday() < 5 and day not in _holidays(self.country, day.year)

    def next_working_day(self, day: date) -> date:
        """The day itself if it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def end_of(self, day: date) -> datetime:
        """The expiry of the last hour of a local day, in UTC."""
        return datetime.combine(day, _END_OF_DAY, tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True)
class Deadline:
    """When a period ends: the local last day (after any move to a working day) and its end in UTC."""

    day: date
    at: datetime
    # The day Art. 3(2) gives before Art. 3(4) moves it to a working day; an extension counts from it.
    nominal_day: date


def due(received_at: datetime, duration: str, cal: LocalCalendar) -> Deadline:
    """The deadline of a period of `duration` from receipt (GDPR Art. 12(3) with 1182/71 Art. 3)."""
    nominal = _last_day(cal.day_of(received_at), duration)
    day = cal.next_working_day(nominal)
    return Deadline(day=day, at=cal.end_of(day), nominal_day=nominal)


def extended(received_at: datetime, response_time: str, extension: str, cal: LocalCalendar) -> Deadline:
    """The deadline after the one extension (Art. 12(3)): `extension` further, counted from the original
    period's own last day (before its move to a working day, which only delays when it can be met), then
    moved to a working day in turn."""
    original = _last_day(cal.day_of(received_at), response_time)
    nominal = _last_day(original, extension)
    day = cal.next_working_day(nominal)
    return Deadline(day=day, at=cal.end_of(day), nominal_day=nominal)

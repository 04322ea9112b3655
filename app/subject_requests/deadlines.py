"""Deadline arithmetic in calendar months: 31 January plus one month is the last day of February."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

import isodate


def add_months(at: datetime, months: int) -> datetime:
    """The same day `months` later, or the month's last day when it has no such day (31.1. → 28./29.2.)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def add_duration(at: datetime, duration: str) -> datetime:
    """`at` plus an ISO 8601 duration of the profile (P1M, P2M, P30D...), months counted on the calendar."""
    parsed = isodate.parse_duration(duration)
    if isinstance(parsed, timedelta):
        return at + parsed
    months = int(parsed.years) * 12 + int(parsed.months)
    return add_months(at, months) + parsed.tdelta

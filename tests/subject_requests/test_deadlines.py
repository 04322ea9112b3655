"""Calendar-month deadline arithmetic: month ends and leap years."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.subject_requests.deadlines import add_duration, add_months


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(("start", "months", "expected"), [
    (at(2027, 1, 31), 1, at(2027, 2, 28)),
    (at(2028, 1, 31), 1, at(2028, 2, 29)),  # leap year
    (at(2028, 2, 29), 1, at(2028, 3, 29)),
    (at(2028, 2, 29), 12, at(2029, 2, 28)),
    (at(2027, 3, 31), 1, at(2027, 4, 30)),
    (at(2027, 12, 15), 1, at(2028, 1, 15)),
    (at(2027, 11, 30), 3, at(2028, 2, 29)),
    (at(2027, 8, 31), -6, at(2027, 2, 28)),
])
def test_add_months(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected


def test_profile_durations() -> None:
    assert add_duration(at(2027, 1, 31), "P1M") == at(2027, 2, 28)
    assert add_duration(at(2027, 2, 28), "P2M") == at(2027, 4, 28)
    assert add_duration(at(2027, 1, 1), "P30D") == at(2027, 1, 31)
    assert add_duration(at(2027, 1, 31), "P1M2D") == at(2027, 3, 2)

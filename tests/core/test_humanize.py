"""Durations in words and local dates and times in Finnish, English and Swedish."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.core.humanize import duration_words, format_date, format_datetime, format_time


@pytest.mark.parametrize(("iso", "fi", "en", "sv"), [
    ("P3Y", "3 vuotta", "3 years", "3 år"),
    ("P1Y", "1 vuosi", "1 year", "1 år"),
    ("P1M", "1 kuukausi", "1 month", "1 månad"),
    ("P2M", "2 kuukautta", "2 months", "2 månader"),
    ("P6Y", "6 vuotta", "6 years", "6 år"),
    ("P1Y6M", "1 vuosi ja 6 kuukautta", "1 year and 6 months", "1 år och 6 månader"),
    ("P14D", "2 viikkoa", "2 weeks", "2 veckor"),
    ("P10D", "10 päivää", "10 days", "10 dagar"),
    ("P1D", "1 päivä", "1 day", "1 dag"),
    ("PT12H", "12 tuntia", "12 hours", "12 timmar"),
    ("P1DT1H30M", "1 päivä, 1 tunti ja 30 minuuttia", "1 day, 1 hour and 30 minutes", "1 dag, 1 timme och 30 minuter"),
    ("p3y", "3 vuotta", "3 years", "3 år"),
])
def test_duration_words(iso: str, fi: str, en: str, sv: str) -> None:
    assert (duration_words(iso, "fi"), duration_words(iso, "en"), duration_words(iso, "sv")) == (fi, en, sv)


@pytest.mark.parametrize("bad", ["P0D", "PT30S", "three years", ""])
def test_duration_without_plain_reading_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        duration_words(bad, "fi")


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        duration_words("P1Y", "de")


def test_local_date_and_time_in_helsinki_across_dst() -> None:
    winter = datetime(2026, 2, 28, 21, 59, 59, 999999, tzinfo=UTC)  # 23:59:59 EET (+02:00)
    summer = datetime(2026, 7, 31, 20, 59, 59, 999999, tzinfo=UTC)  # 23:59:59 EEST (+03:00)
    assert format_datetime(winter, "fi") == "28.2.2026 klo 23.59"
    assert format_datetime(winter, "en") == "28 February 2026 at 23:59"
    assert format_datetime(summer, "sv") == "31 juli 2026 kl. 23.59"
    assert format_time("2026-03-29T01:30:00+00:00", "fi") == "04.30"  # the first hour of summer time
    assert format_date("2026-01-30T23:00:00Z", "fi") == "31.1.2026"  # already the next day in Helsinki
    assert format_date(date(2026, 12, 6), "en") == "6 December 2026"
    assert format_date("2026-12-06", "sv") == "6 december 2026"
    assert format_datetime(datetime(2026, 1, 1, 12, 0), "fi", time_zone="UTC") == "1.1.2026 klo 12.00"

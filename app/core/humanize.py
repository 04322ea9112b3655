"""Words for people: ISO 8601 durations and local dates and times in Finnish, English and Swedish.

GDPR Art. 12(1) asks for concise, intelligible information in clear and plain language: a letter says
"3 vuotta", "28.2.2026 klo 23.59", never `P3Y` or `2026-02-28T21:59:59.999999Z`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import isodate

LANGUAGES = ("fi", "en", "sv")
DEFAULT_TIME_ZONE = "Europe/Helsinki"

# (singular, plural) of each unit, largest first.
_UNITS: dict[str, dict[str, tuple[str, str]]] = {
    "fi": {"years": ("vuosi", "vuotta"), "months": ("kuukausi", "kuukautta"), "weeks": ("viikko", "viikkoa"),
           "days": ("päivä", "päivää"), "hours": ("tunti", "tuntia"), "minutes": ("minuutti", "minuuttia")},
    "en": {"years": ("year", "years"), "months": ("month", "months"), "weeks": ("week", "weeks"),
           "days": ("day", "days"), "hours": ("hour", "hours"), "minutes": ("minute", "minutes")},
    "sv": {"years": ("år", "år"), "months": ("månad", "månader"), "weeks": ("vecka", "veckor"),
           "days": ("dag", "dagar"), "hours": ("timme", "timmar"), "minutes": ("minut", "minuter")},
}
_AND = {"fi": "ja", "en": "and", "sv": "och"}
_MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "sv": ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september", "oktober",
           "november", "december"),
}


def _language(lang: str) -> str:
    """The language itself if supported; ValueError otherwise (a wrong language is a programming error)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; one of {', '.join(LANGUAGES)}")
    return lang


def _parts(iso_duration: str) -> dict[str, int]:
    """An ISO 8601 duration split into whole years, months, weeks (only when exact), days, hours and minutes."""
    parsed = isodate.parse_duration(iso_duration.strip().upper())
    delta: timedelta = getattr(parsed, "tdelta", parsed)
    if delta.seconds % 60 or delta.microseconds or delta < timedelta(0):
        raise ValueError(f"{iso_duration!r} has no plain reading (seconds or a negative span)")
    weeks, days = divmod(delta.days, 7) if delta.days and delta.days % 7 == 0 else (0, delta.days)
    return {"years": int(getattr(parsed, "years", 0)), "months": int(getattr(parsed, "months", 0)),
            "weeks": weeks, "days": days, "hours": delta.seconds // 3600, "minutes": delta.seconds % 3600 // 60}


def duration_words(iso_duration: str, lang: str) -> str:
    """`P3Y` as "3 vuotta" / "3 years" / "3 år"; `P1Y6M` as "1 vuosi ja 6 kuukautta" (Art. 12(1) plain language)."""
    units = _UNITS[_language(lang)]
    words = [f"{n} {units[unit][0 if n == 1 else 1]}" for unit, n in _parts(iso_duration).items() if n]
    if not words:
        raise ValueError(f"{iso_duration!r} is a zero duration")
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} {_AND[lang]} {words[-1]}"


def _local(value: datetime | str, time_zone: str) -> datetime:
    """An aware time (or its RFC 3339 text) in the given zone; a naive time is taken as UTC."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(ZoneInfo(time_zone))


def format_date(value: date | datetime | str, lang: str, *, time_zone: str = DEFAULT_TIME_ZONE) -> str:
    """A day as "28.2.2026" / "28 February 2026" / "28 februari 2026"; a time is first taken to local time."""
    _language(lang)
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    day = _local(value, time_zone).date() if isinstance(value, datetime) else value
    if lang == "fi":
        return f"{day.day}.{day.month}.{day.year}"
    return f"{day.day} {_MONTHS[lang][day.month - 1]} {day.year}"


def format_time(value: datetime | str, lang: str, *, time_zone: str = DEFAULT_TIME_ZONE) -> str:
    """A clock time in local time, minutes only: "23.59" (fi, sv) or "23:59" (en)."""
    at = _local(value, time_zone)
    separator = ":" if _language(lang) == "en" else "."
    return f"{at.hour:02d}{separator}{at.minute:02d}"


def format_datetime(value: datetime | str, lang: str, *, time_zone: str = DEFAULT_TIME_ZONE) -> str:
    """A moment in local time without seconds: "28.2.2026 klo 23.59" / "28 February 2026 at 23:59" / "… kl. 23.59"."""
    word = {"fi": "klo", "en": "at", "sv": "kl."}[_language(lang)]
    return f"{format_date(value, lang, time_zone=time_zone)} {word} {format_time(value, lang, time_zone=time_zone)}"

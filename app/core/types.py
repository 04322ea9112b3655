"""Input types every schema and parameter uses, so hostile input is refused the same way on every database.

PostgreSQL refuses a NUL byte in text and JSON, an instant outside its range and an integer wider than its
column, where SQLite stores the same value silently: each type here refuses such a value with a 422 that names
the field, before it reaches either database.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

import annotated_types
from pydantic import AfterValidator, StringConstraints

# C0 controls (NUL included), DEL and C1 controls; U+2028/2029 break lines like LF does.
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
# Bidi embeddings, overrides and isolates (the "Trojan Source" characters).
_BIDI = "\u202a-\u202e\u2066-\u2069"
# Zero-width and invisible formatting characters, and the byte-order mark.
_INVISIBLE = "\u200b-\u200f\u2060-\u2064\ufeff\u180e"
# A lone surrogate cannot be encoded as UTF-8: either driver would fail on it.
_SURROGATES = "\ud800-\udfff"

_LINE_BAD = re.compile(f"[{_CONTROLS}{_BIDI}{_SURROGATES}]")
_NAME_BAD = re.compile(f"[{_CONTROLS}{_BIDI}{_INVISIBLE}{_SURROGATES}]")
_TEXT_BAD = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f{_SURROGATES}]")

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
JSON_MAX_DEPTH = 32


def _refuse(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found is not None:
            raise ValueError(f"{what} may not contain the character U+{ord(found.group()):04X}")
        return value

    check.__qualname__ = check.__name__ = f"refuse_{what.replace(' ', '_')}"
    return check


check_line = _refuse(_LINE_BAD, "single-line text")
check_name = _refuse(_NAME_BAD, "a name")
check_text = _refuse(_TEXT_BAD, "text")


def check_instant(value: datetime) -> datetime:
    """An aware instant within 1900–2200; a naive one is refused with a hint."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("the time has no UTC offset: add one, e.g. 2026-01-31T09:00:00+02:00 or 2026-01-31T07:00:00Z")
    # Compare the year first: converting 9999-12-31T23:59:59-12:00 to UTC would overflow.
    if not (EARLIEST.year - 1 <= value.year <= LATEST.year) or not (EARLIEST <= value < LATEST):
        raise ValueError("the time must be between 1900-01-01T00:00:00Z and 2200-01-01T00:00:00Z")
    return value


def check_day(value: date) -> date:
    """A calendar day within 1900–2199."""
    if not (EARLIEST.year <= value.year < LATEST.year):
        raise ValueError("the date must be between 1900-01-01 and 2199-12-31")
    return value


def check_json(value: Any, _depth: int = 0) -> Any:
    """JSON that both databases store alike: finite numbers, 64-bit integers, text without NUL, bounded depth."""
    if _depth > JSON_MAX_DEPTH:
        raise ValueError(f"JSON may nest at most {JSON_MAX_DEPTH} levels")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("JSON numbers must be finite (no NaN, Infinity or overflowing exponents)")
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValueError("JSON integers must fit in 64 bits")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            check_json(item, _depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, _depth + 1)
    return value


def line(max_length: int, *, min_length: int = 1, pattern: str | None = None) -> Any:
    """Single-line text: no control characters (NUL, CR, LF, ESC, …), no bidi overrides."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length, pattern=pattern),
                     AfterValidator(check_line)]


def text(max_length: int, *, min_length: int = 1) -> Any:
    """Multi-line text: line breaks and tabs allowed, NUL and other control characters refused."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length), AfterValidator(check_text)]


def name(max_length: int = 200) -> Any:
    """A name: single-line text that also refuses zero-width and other invisible characters."""
    return Annotated[str, StringConstraints(min_length=1, max_length=max_length), AfterValidator(check_name)]


# For parameters, whose Query/Form/Path sets the length: the characters only.
Line = Annotated[str, AfterValidator(check_line)]
Name = name(200)
Instant = Annotated[datetime, AfterValidator(check_instant)]
Day = Annotated[date, AfterValidator(check_day)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
JsonValue = Annotated[Any, AfterValidator(check_json)]
# Path and query integers: PostgreSQL's integer column, so 2147483648 is a 422 and not an overflow.
Int32 = Annotated[int, annotated_types.Ge(1), annotated_types.Le(INT32_MAX)]
Id = uuid.UUID

SHARED_CHECKS = frozenset({check_line, check_name, check_text, check_instant, check_day, check_json})

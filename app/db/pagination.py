"""Cursor pagination: one keyset helper every list uses, with opaque cursors validated strictly.

A cursor is the sort key of the last item of a page, as base64url JSON. It is checked against the key's shape
(how many values, of which kind, within which range) before it reaches a query, so a forged or truncated cursor
is a 422 naming `cursor` on SQLite and PostgreSQL alike, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from app.core.errors import Invalid
from app.core.types import INT32_MAX, INT64_MAX, check_instant

T = TypeVar("T")
CURSOR_MAX_LENGTH = 512
_MALFORMED = "malformed cursor: pass the `next_cursor` of the previous page of this list unchanged"


class Page(BaseModel, Generic[T]):
    """One page of a list and the cursor of the next page (null on the last)."""

    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    """What the client asked for: how many, and after which cursor (its raw values; see `Keyset.after`)."""

    limit: int
    after: list[Any] | None = None


def malformed_cursor() -> Invalid:
    """The one answer to a cursor that was not made by this list."""
    return Invalid(_MALFORMED, loc=["query", "cursor"])


@dataclass(frozen=True)
class Kind:
    """How one value of a sort key is written in a cursor and read back."""

    name: str
    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


def _load_instant(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError(value)
    return check_instant(datetime.fromisoformat(value))


def _load_uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str) or len(value) > 36:
        raise ValueError(value)
    return uuid.UUID(value)


def _int_loader(low: int, high: int) -> Callable[[Any], int]:
    def load(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(value)
        return value

    return load


INSTANT = Kind("instant", lambda v: v.isoformat(), _load_instant)
UUID = Kind("uuid", str, _load_uuid)
INT32 = Kind("int32", int, _int_loader(-INT32_MAX - 1, INT32_MAX))
INT64 = Kind("int64", int, _int_loader(-INT64_MAX - 1, INT64_MAX))


@dataclass(frozen=True)
class Keyset:
    """The sort key of a list: its columns (unique together) with their kinds, ascending or descending."""

    columns: Sequence[tuple[ColumnElement[Any], Kind]]
    descending: bool = False

    def values(self, params: PageParams) -> list[Any] | None:
        """The cursor's key, each value checked and converted; 422 if it does not fit this key."""
        if params.after is None:
            return None
        if len(params.after) != len(self.columns):
            raise malformed_cursor()
        try:
            return [kind.load(raw) for (_, kind), raw in zip(self.columns, params.after, strict=True)]
        except (ValueError, TypeError, OverflowError) as exc:
            raise malformed_cursor() from exc

    def after(self, params: PageParams) -> ColumnElement[bool] | None:
        """The WHERE clause for the rows after the cursor, or None on the first page."""
        values = self.values(params)
        if values is None:
            return None
        columns = [column for column, _ in self.columns]
        clauses = []
        for i, (column, value) in enumerate(zip(columns, values, strict=True)):
            beyond = column < value if self.descending else column > value
            clauses.append(and_(*(c == v for c, v in zip(columns[:i], values[:i], strict=True)), beyond))
        return or_(*clauses)

    def cursor(self, row: Any) -> str:
        """The cursor that continues after this row."""
        key = []
        for column, kind in self.columns:
            name = column.key
            value = row[name] if isinstance(row, Mapping) else getattr(row, name)
            key.append(kind.dump(value))
        return encode_cursor(key)


def encode_cursor(key: list[Any]) -> str:
    """An opaque cursor for the sort key of the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The raw values in a cursor (checked against the list's key by `Keyset.values`); 422 if not a cursor."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")), parse_constant=_refuse_constant)
    except (binascii.Error, ValueError, UnicodeError, RecursionError) as exc:
        raise malformed_cursor() from exc
    if not isinstance(value, list):
        raise malformed_cursor()
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def read_params(limit: int | None, cursor: str | None, *, default: int, cap: int) -> PageParams:
    """Cap the limit and decode the cursor."""
    wanted = limit or default
    return PageParams(limit=min(wanted, cap), after=decode_cursor(cursor) if cursor else None)


CursorQuery = Annotated[str | None, Query(max_length=CURSOR_MAX_LENGTH, pattern=r"^[A-Za-z0-9_=-]+$",
                                          description="`next_cursor` of the previous page")]


async def page_params(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, description="Items per page (capped)")] = None,
    cursor: CursorQuery = None,
) -> PageParams:
    """Read `limit` and `cursor`, capping the limit at the configured maximum."""
    settings = request.app.state.settings
    return read_params(limit, cursor, default=settings.page_limit_default, cap=settings.page_limit_max)


PageDep = Annotated[PageParams, Depends(page_params)]


def make_page(rows: list[Any], params: PageParams, *, keyset: Keyset, convert: Callable[[Any], T]) -> Page[T]:
    """Cut the one extra row fetched to learn whether another page exists, and convert the rest."""
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = keyset.cursor(rows[-1]) if more and rows else None
    return Page(items=[convert(row) for row in rows], next_cursor=next_cursor)

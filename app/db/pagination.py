"""Cursor pagination: opaque cursors over a stable sort key."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from app.core.errors import Invalid

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list and the cursor of the next page (null on the last)."""

    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    """What the client asked for: how many, and after which cursor."""

    limit: int
    after: list[Any] | None = None


def encode_cursor(key: list[Any]) -> str:
    """An opaque cursor for the sort key of the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The sort key in a cursor; 422 if it was not made by us."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Invalid("malformed cursor", loc=["query", "cursor"]) from exc
    if not isinstance(value, list):
        raise Invalid("malformed cursor", loc=["query", "cursor"])
    return value


def page_params(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, description="Items per page (capped)")] = None,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")] = None,
) -> PageParams:
    """Read `limit` and `cursor`, capping the limit at the configured maximum."""
    settings = request.app.state.settings
    wanted = limit or settings.page_limit_default
    return PageParams(limit=min(wanted, settings.page_limit_max), after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


def make_page(rows: list[Any], params: PageParams, *, key: Callable[[Any], list[Any]],
              convert: Callable[[Any], T]) -> Page[T]:
    """Cut the one extra row fetched to learn whether another page exists, and convert the rest."""
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = encode_cursor(key(rows[-1])) if more and rows else None
    return Page(items=[convert(row) for row in rows], next_cursor=next_cursor)

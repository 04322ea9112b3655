"""Small statement helpers shared by the domain repositories."""

from __future__ import annotations

from typing import Any

from collections.abc import Collection

from sqlalchemy import ColumnElement, Table, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    """`postgresql` or `sqlite`."""
    return session.get_bind().dialect.name


def insert_ignoring_conflicts(session: AsyncSession, table: Table, **conflict: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect of the session (both databases have it)."""
    module = postgresql if dialect_name(session) == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(**conflict)


def among(session: AsyncSession, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `column = ANY(:values)`, one array parameter.

    A batch of thousands of ids as one array keeps the statement's text (and so its compiled and prepared forms)
    the same from batch to batch; an IN list renders one placeholder per id every time.
    """
    if dialect_name(session) == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)

"""Small statement helpers shared by the domain repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    """`postgresql` or `sqlite`."""
    return session.get_bind().dialect.name


def insert_ignoring_conflicts(session: AsyncSession, table: Table, **conflict: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect of the session (both databases have it)."""
    module = postgresql if dialect_name(session) == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(**conflict)

"""Tampering with the audit log in tests: inside a savepoint with the append-only triggers off, rolled back after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@asynccontextmanager
async def tampering(app, is_postgres: bool) -> AsyncIterator[AsyncConnection]:
    """A connection on which the audit log may be changed; everything done on it is rolled back at the end."""
    async with app.state.db.engine.connect() as conn:
        transaction = await conn.begin_nested()
        try:
            # Switch the append-only triggers off inside this transaction only (both databases roll DDL back).
            if is_postgres:
                await conn.execute(text("SET LOCAL session_replication_role = replica"))
            else:
                await conn.execute(text("DROP TRIGGER audit_entry_no_update"))
                await conn.execute(text("DROP TRIGGER audit_entry_no_delete"))
            yield conn
        finally:
            await transaction.rollback()

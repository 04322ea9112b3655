"""Statements run on a pooled connection's driver (PostgreSQL, asyncpg) instead of through SQLAlchemy's execution.

A statement is compiled once per dialect; each run binds its values with SQLAlchemy's own bind processing (JSON
serialised, enums as their values, times as the column types take them) and runs it as asyncpg's prepared
statement: none of SQLAlchemy's per-execution work (cache keys, parameter and result processing), which cost more
CPU than the database's own work for the hot write statements. For statements whose result is a few plain values.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class DriverStatement:
    """A statement as asyncpg runs it: the SQL, and how each `$n` is filled."""

    sql: str
    positions: tuple[str, ...]  # the bind parameter of each $n
    processors: tuple[Callable[[Any], Any] | None, ...]
    constants: dict[str, Any]  # values the statement carries itself (literals)

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        """The positional arguments for these bind values."""
        out = []
        for name, process in zip(self.positions, self.processors, strict=True):
            value = values[name] if name in values else self.constants[name]
            out.append(process(value) if process is not None else value)  # None too, as SQLAlchemy does
        return out


_COMPILED: dict[tuple[int, str], tuple[Executable, DriverStatement]] = {}


def compiled(stmt: Executable, dialect: Dialect) -> DriverStatement:
    """`stmt` compiled for the driver (kept per statement object and dialect: build statements once)."""
    key = (id(stmt), dialect.name)
    found = _COMPILED.get(key)
    if found is None or found[0] is not stmt:
        done = stmt.compile(dialect=dialect)
        positions = tuple(done.positiontup or ())
        processors = done._bind_processors  # noqa: SLF001 - SQLAlchemy's own processing of each bind's type
        constants = {name: bind.effective_value for name, bind in done.binds.items() if not bind.required}
        found = stmt, DriverStatement(done.string, positions, tuple(processors.get(n) for n in positions), constants)
        _COMPILED[key] = found
    return found[1]


async def fetchrow(conn: AsyncConnection, stmt: Executable, values: dict[str, Any]) -> Any:
    """The first row `stmt` returns, run on `conn`'s driver connection (outside any transaction of SQLAlchemy's:
    for a connection in autocommit)."""
    statement = compiled(stmt, conn.dialect)
    arguments = statement.arguments(values)
    pooled = await conn.get_raw_connection()
    driver = pooled.driver_connection
    async with lost_as_outage(driver, conn.invalidate):
        return await driver.fetchrow(statement.sql, *arguments)


@asynccontextmanager
async def lost_as_outage(driver: Any, invalidate: Callable[[BaseException], Any]) -> AsyncIterator[None]:
    """Calls on a driver connection: when one fails because the connection was lost, the connection is invalidated
    (`invalidate`, sync or async) and the failure raised as SQLAlchemy reports a lost connection, so the handlers
    answer 503 (nothing was committed)."""
    try:
        yield
    except Exception as exc:
        if driver.is_closed():
            invalidated = invalidate(exc)
            if inspect.isawaitable(invalidated):
                await invalidated
            raise sa_exc.DisconnectionError("the database connection was lost") from exc
        raise

"""Audited reads on the pooled connection's driver (PostgreSQL, asyncpg), for the lean routes (app/core/lean.py).

The same combined lookup-and-audit statement as `service.read_audited` (`chain.lookup_with_entry`), compiled once
per shape to asyncpg's SQL and run as asyncpg's prepared statement on its own: one implicit transaction, one round
trip, and none of SQLAlchemy's per-execution work (cache keys, parameter processing, result rows). Only for what
`read_audited` runs that way too: a sequencer seals (no inline sealing), nothing else in the transaction.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from app.audit import chain
from app.audit.service import new_entry
from app.auth.principal import Principal
from app.db.driver import lost_as_outage
from app.db.session import Database


@dataclass(frozen=True)
class CompiledRead:
    """A combined statement as asyncpg runs it: the SQL, and where each value goes."""

    sql: str
    positions: tuple[str, ...]  # the bind parameter of each $n
    constants: dict[str, Any]  # values the statement carries itself (JSON keys, limits, the commit mode)

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        """The positional arguments for these bind values (a list value fills `name_1`, `name_2`, …)."""
        flat = dict(self.constants)
        for name, value in values.items():
            if isinstance(value, list | tuple):
                flat.update({f"{name}_{i}": item for i, item in enumerate(value, 1)})
            else:
                flat[name] = value
        return [flat[name] for name in self.positions]


_COMPILED: dict[Hashable, CompiledRead] = {}
_ENTRY_PARAMS = tuple(chain.entry_params(dict.fromkeys(chain.ENTRY_FIELDS)))


def compiled_read(stmt: Select[Any], *, shape: Hashable, values: dict[str, Any], engine: AsyncEngine,
                  order_by: tuple[str, ...], limit: int, async_commit: bool) -> CompiledRead:
    """The combined statement of `stmt` (of this `shape`) compiled for the engine's driver, built once per shape and
    per length of each list value (PostgreSQL's `IN` takes one parameter per item)."""
    lists = tuple(sorted((name, len(v)) for name, v in values.items() if isinstance(v, list | tuple)))
    key = (shape, lists, order_by, limit, async_commit)
    found = _COMPILED.get(key)
    if found is None:
        combined = chain.lookup_with_entry(stmt, order_by=order_by, limit=limit, async_commit=async_commit)
        # Placeholders for the request's own values (a list's length fixes how its `IN` renders); the values the
        # statement carries itself stay as they are and become the constants.
        placeholders = dict.fromkeys((*values, *_ENTRY_PARAMS))
        placeholders.update({name: [None] * length for name, length in lists})
        state = combined.compile(dialect=engine.dialect).construct_expanded_state(placeholders)
        expanded = {f"{name}_{i}" for name, length in lists for i in range(1, length + 1)}
        constants = {k: v for k, v in state.parameters.items() if k not in placeholders and k not in expanded}
        found = CompiledRead(state.statement, tuple(state.positiontup or ()), constants)
        if len(_COMPILED) < 1000:
            _COMPILED[key] = found
    return found


async def read_audited(database: Database, stmt: Select[Any], *, params: dict[str, Any], shape: Hashable,
                       actor: Principal, action: str, resource_type: str, order_by: tuple[str, ...], limit: int,
                       async_commit: bool) -> list[dict[str, Any]]:
    """`service.read_audited`'s one-round-trip case on a pooled driver connection: the rows (as dicts), with one
    audit entry naming the registrants among the first `limit` of them and their count, written unsealed."""
    entry = new_entry(actor=actor, action=action, resource_type=resource_type)
    read = compiled_read(stmt, shape=shape, values=params, engine=database.engine, order_by=order_by, limit=limit,
                         async_commit=async_commit)
    arguments = read.arguments({**params, **chain.entry_params(entry)})
    async with database.lean_reads:
        pooled = await database.engine.raw_connection()
        try:
            driver = pooled.driver_connection
            async with lost_as_outage(driver, pooled.invalidate):
                records = await driver.fetch(read.sql, *arguments)
        finally:
            await greenlet_spawn(pooled.close)
    return [dict(record.items()) for record in records]

"""Alembic environment: async engines on SQLite and PostgreSQL, batch mode on SQLite."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app.core.config import get_settings
from app.db.base import UTCDateTime
from app.db.models import Base
from app.db.session import create_engine

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    return config.attributes.get("database_url") or get_settings().database_url


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations spell column types in plain SQLAlchemy, never importing app code.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# Indexes that exist only in migrations: PostgreSQL expression indexes the models cannot state portably
# (0020: the audience's address order, matched against `app.consents.repository.contact_of` by a test).
MIGRATION_ONLY_INDEXES = frozenset({"ix_registrant_audience_email", "ix_registrant_audience_phone"})


def _include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "index" and reflected and compare_to is None and name in MIGRATION_ONLY_INDEXES)


def _configure(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite changes a table's constraints by rebuilding it (batch mode): with foreign keys enforced, dropping
        # the old table would fail or cascade. SQLite's own procedure: keys off (outside the transaction, where the
        # pragma works), rebuild, then `foreign_key_check` before the commit.
        _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
        render_item=_render_item,
        include_object=_include_object,
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")
    finally:
        if sqlite:
            _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    """Run a pragma on the driver connection, outside any transaction SQLAlchemy would begin."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(pragma)
    finally:
        cursor.close()


async def _run_online() -> None:
    settings = get_settings().model_copy(update={"database_url": _database_url()})
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run against a live database (offline SQL generation is not supported)."""
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _configure(connectable)
        return
    asyncio.run(_run_online())


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `rekisteri migrate`")
run_migrations_online()

"""Running alembic from code: upgrade under a lock, and the current and head revisions."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Callable
from functools import lru_cache
import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

ROOT = Path(__file__).resolve().parents[2]
# Any constant both sides agree on; "rekisteri migrate" in ASCII, folded to a signed 64-bit key.
MIGRATION_LOCK_KEY = int.from_bytes(b"rk-migrt", "big") - 2**63


def script_location() -> str:
    """The migrations: the checkout's `migrations/`, or the copy packaged in the wheel."""
    checkout = ROOT / "migrations"
    if (checkout / "env.py").exists():
        return str(checkout)
    spec = importlib.util.find_spec("rekisteri_migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the migrations are missing: neither ./migrations nor the packaged rekisteri_migrations")
    return str(spec.submodule_search_locations[0])


def alembic_config(database_url: str | None = None) -> Config:
    """The alembic configuration (the repository's alembic.ini when there is one), optionally for another database."""
    ini = ROOT / "alembic.ini"
    config = Config(str(ini)) if ini.exists() else Config()
    config.set_main_option("script_location", script_location())
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, *, waiting: Callable[[str], None] | None = None) -> None:
    """Migrate the database to the head revision; concurrent runs wait for each other, the later ones find nothing to do.

    PostgreSQL: a session advisory lock, so replicas or deploy jobs started together migrate once.
    SQLite: an exclusive lock on a file beside the database (one machine is all SQLite has).
    """
    from app.core.config import get_settings  # noqa: PLC0415 - env.py reads the same settings

    url = database_url or get_settings().database_url
    notify = waiting or (lambda _: None)
    if make_url(url).get_backend_name() == "postgresql":
        asyncio.run(_upgrade_postgres(url, notify))
        return
    database = make_url(url).database
    if not database or database == ":memory:":
        command.upgrade(alembic_config(url), "head")
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            notify("another migration is running; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(url), "head")
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def _upgrade_postgres(url: str, notify: Callable[[str], None]) -> None:
    from app.core.config import get_settings  # noqa: PLC0415
    from app.db.session import create_engine  # noqa: PLC0415

    engine = create_engine(get_settings().model_copy(update={"database_url": url, "db_pool_size": 1}))
    try:
        async with engine.connect() as conn:
            key = {"key": MIGRATION_LOCK_KEY}
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key)).scalar_one()
            await conn.commit()
            if not got:
                notify("another migration is running; waiting for it to finish")
                await conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
                await conn.commit()
            try:
                await conn.run_sync(_upgrade_on)
                await conn.commit()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                await conn.commit()
    finally:
        await engine.dispose()


def _upgrade_on(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@lru_cache
def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at."""
    return MigrationContext.configure(connection).get_current_revision()

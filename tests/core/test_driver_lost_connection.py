"""A statement run on the driver connection (the lean paths) reports a lost connection as SQLAlchemy does, so the
handlers answer 503, and the pool drops the connection instead of handing it out again."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import literal, select, text

from app.db import driver
from app.db.session import Database

pytestmark = pytest.mark.commits


async def test_a_connection_lost_on_the_driver_is_an_outage_and_invalidated(settings, is_postgres):
    if not is_postgres:
        pytest.skip("the driver path is PostgreSQL's (asyncpg)")
    database = Database.from_settings(settings)
    try:
        async with database.engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await conn.commit()
            async with database.engine.connect() as killer:
                await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(sa_exc.DisconnectionError):
                await driver.fetchrow(conn, select(literal(1).label("one")), {})
            assert conn.invalidated
        async with database.engine.connect() as conn:  # the pool gives a working connection again
            assert (await driver.fetchrow(conn, select(literal(1).label("one")), {}))["one"] == 1
    finally:
        await database.engine.dispose()

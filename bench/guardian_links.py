"""How much the guardian/children JSON subqueries add to the registrant lookup statement (PostgreSQL, DB side).

20,000 registrants (2,000 children each linked to one of 1,000 guardians); 3,000 lookups by email of random
registrants through asyncpg with the registrant SELECT, with and without the two link subqueries.

    .venv/bin/python bench/guardian_links.py   (drops and re-creates the database rk_guardian_bench)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import statistics
import time
import uuid

import asyncpg
from sqlalchemy import create_engine, select, text
from sqlalchemy.dialects import postgresql

from app.db import migrations
from app.registrants.repository import R, _extras

URL = "postgresql://postgres@127.0.0.1:5432/rk_guardian_bench"


def prepare() -> None:
    """A fresh, migrated database."""
    eng = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("DROP DATABASE IF EXISTS rk_guardian_bench"))
        c.execute(text("CREATE DATABASE rk_guardian_bench"))
    eng.dispose()
    migrations.upgrade(URL)


async def seed(conn: asyncpg.Connection) -> None:
    """Registrants by COPY; each of 2,000 children linked to one of 1,000 guardians."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    ids = [uuid.uuid4() for _ in range(20000)]
    for i, rid in enumerate(ids):
        rows.append((rid, "person", "G", f"F{i}", f"p{i}@example.com", "fi", "active", 1, "bench", "[]", now, now))
    await conn.copy_records_to_table("registrant", records=rows, columns=[
        "id", "kind", "given_name", "family_name", "email", "language", "status", "version", "created_by",
        "contact_persons", "created_at", "updated_at"])
    links = [(ids[1000 + i], ids[i % 1000], "api", "bench") for i in range(2000)]
    await conn.executemany("INSERT INTO guardian_link (child_id, guardian_id, source, linked_at, linked_by) "
                           "VALUES ($1, $2, $3, now(), $4)", links)
    await conn.execute("ANALYZE")


def sql(with_extras: bool) -> tuple[str, list]:
    """The lookup by email as PostgreSQL text with its parameters."""
    refs, types, guardians, children = _extras("postgresql")
    cols = [R, refs, types] + ([guardians, children] if with_extras else [])
    stmt = select(*cols).where(R.c.email == "X", R.c.status == "active").limit(51)
    compiled = stmt.compile(dialect=postgresql.dialect(paramstyle="numeric_dollar"), compile_kwargs={})
    s = str(compiled)
    params = list(compiled.params.values())
    return s, params


async def run() -> None:
    """Both statements, interleaved, twice; the better median of each."""
    conn = await asyncpg.connect(URL)
    await seed(conn)
    out = {}
    for label, extras in (("without links", False), ("with links", True)) * 2:
        s, params = sql(extras)
        stmt = await conn.prepare(s)
        times = []
        for _ in range(3000):
            n = random.randrange(20000)
            p = [f"p{n}@example.com" if v == "X" else v for v in params]
            t = time.perf_counter(); await stmt.fetch(*p); times.append(time.perf_counter() - t)
        out.setdefault(label, []).append(statistics.median(times) * 1e6)
    for k, v in out.items():
        print(f"{k:14s} median per lookup: {min(v):.0f} µs (best of 2 runs of 3,000)")
    await conn.close()


if __name__ == "__main__":
    prepare()
    asyncio.run(run())

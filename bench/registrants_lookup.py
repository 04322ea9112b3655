"""Benchmark: registrant lookups on PostgreSQL with 100,000 registrants and 1,000,000 records.

Shows the query plans of the email and external-reference lookups, then starts `rekisteri serve`
(one worker) and measures with wrk, side by side in one run, an authenticated endpoint that does
no work beyond authentication (`GET /v1/auth/me`: token check plus the revocation read) against the
authenticated, audited `GET /v1/registrants?email=...` (random emails), and prints the ratio.

    .venv/bin/python bench/registrants_lookup.py
    REKISTERI_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rk_bench  (the default)
    BENCH_ROUNDS=3 BENCH_SECONDS=10  (wrk -t2 -c32 -d10s per endpoint per round; medians are reported)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from _common import account_token, dsn, ensure_database, served
from sqlalchemy.dialects import postgresql

from app.auth.roles import Role
from app.db import migrations
from app.db.pagination import PageParams
from app.registrants import repository as repo

URL = os.environ.get("REKISTERI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/rk_bench")
REGISTRANTS, RECORDS_EACH = 100_000, 10
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
SECRET = "bench-secret-" + "b" * 40
ROOT = Path(__file__).resolve().parents[1]
LUA = """
request = function()
  return wrk.format(nil, "/v1/registrants?email=person" .. math.random(0, %d) .. "%%40example.com")
end
""" % (REGISTRANTS - 1)


async def seed(conn: asyncpg.Connection) -> None:
    """Fill registrants, references and records with COPY (skipped when already seeded)."""
    if await conn.fetchval("SELECT count(*) FROM registrant") >= REGISTRANTS:
        print("already seeded")
        return
    started, now = time.perf_counter(), datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(REGISTRANTS)]
    await conn.copy_records_to_table("registrant", columns=[
        "id", "kind", "given_name", "family_name", "email", "phone", "language", "status", "version", "created_by",
        "contact_persons", "created_at", "updated_at"], records=(
        (rid, "person", "Maija", f"Meikäläinen{i}", f"person{i}@example.com", f"+35840{i:07d}", "fi", "active", 1,
         "bench", "[]", now - timedelta(seconds=REGISTRANTS - i), now) for i, rid in enumerate(ids)))
    await conn.copy_records_to_table("registrant_ref", columns=[
        "id", "registrant_id", "system", "external_id", "created_at"], records=(
        (uuid.uuid4(), rid, "booking", f"b{i}", now) for i, rid in enumerate(ids)))
    await conn.copy_records_to_table("registrant_customer_type", columns=["registrant_id", "customer_type"],
                                     records=((rid, ("season", "course", "web_shop")[i % 3]) for i, rid in enumerate(ids)))
    data = json.dumps({"product": "Laulutunti", "sum": "49.00"})
    await conn.copy_records_to_table("relationship_record", columns=[
        "id", "registrant_id", "type", "occurred_at", "source", "external_id", "data", "data_category", "created_by",
        "created_at"], records=(
        (uuid.uuid4(), rid, "lesson", now - timedelta(days=j), "booking", f"r{i}-{j}", data, "service_use", "bench", now)
        for i, rid in enumerate(ids) for j in range(RECORDS_EACH)))
    await conn.execute("ANALYZE")
    print(f"seeded {REGISTRANTS:,} registrants and {REGISTRANTS * RECORDS_EACH:,} records "
          f"in {time.perf_counter() - started:.0f}s")


async def explain(conn: asyncpg.Connection) -> None:
    """Print the plans of the statements the service runs for the two lookups."""
    params = PageParams(limit=50)
    for label, filters in (("email", repo.RegistrantFilter(email="person4242@example.com")),
                           ("external reference", repo.RegistrantFilter(ref=("booking", "b4242")))):
        stmt = repo.find_statement(filters=filters, visibility=repo.Visibility(), params=params, dialect="postgresql")
        sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        plan = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql)
        print(f"\n-- lookup by {label}\n" + "\n".join(r[0] for r in plan))


def wrk(url: str, token: str, script: str | None = None) -> float:
    """Requests per second that wrk measured (and a check that there were no errors)."""
    command = ["wrk", "-t2", "-c32", f"-d{SECONDS}s", "-H", f"Authorization: Bearer {token}", url]
    if script:
        command[1:1] = ["-s", script]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        print(out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> int:
    """Seed, explain, serve, measure, report."""
    asyncio.run(ensure_database(URL))
    migrations.upgrade(URL)

    async def prepare() -> str:
        conn = await asyncpg.connect(dsn(URL))
        try:
            await seed(conn)
            await explain(conn)
            return await account_token(conn, url=URL, secret=SECRET, role=Role.staff)
        finally:
            await conn.close()

    token = asyncio.run(prepare())
    with served(URL, SECRET) as base:
        sample = httpx.get(base + "/v1/registrants?email=person4242@example.com",
                           headers={"Authorization": f"Bearer {token}"})
        assert sample.status_code == 200 and len(sample.json()["items"]) == 1, sample.text
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(LUA)
        baseline, lookup = [], []
        for round_ in range(ROUNDS):
            baseline.append(wrk(base + "/v1/auth/me", token))
            lookup.append(wrk(base + "/v1/registrants", token, lua.name))
            print(f"round {round_ + 1}: /v1/auth/me {baseline[-1]:,.0f} req/s, "
                  f"/v1/registrants?email= {lookup[-1]:,.0f} req/s, ratio {lookup[-1] / baseline[-1]:.2f}")
    b, lk = statistics.median(baseline), statistics.median(lookup)
    paired = statistics.median(x / y for x, y in zip(lookup, baseline, strict=True))
    # The paired ratio (each round's lookup against the baseline measured just before it) is steadier
    # than the ratio of medians when other work on the machine comes and goes.
    print(f"\nmedian of {ROUNDS}: auth only (GET /v1/auth/me) {b:,.0f} req/s; "
          f"audited lookup (GET /v1/registrants?email=) {lk:,.0f} req/s; ratio {lk / b:.2f}; "
          f"median paired ratio {paired:.2f} (target >= 0.30)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

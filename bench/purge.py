"""Benchmark: `rekisteri purge` of 1,000,000 relationship records on PostgreSQL (GDPR Art. 5(1)(e)).

Seeds 100,000 registrants whose customer relationship ended five years ago, ten records each (1,000,000),
and 10,000 current customers with ten recent records each (kept). Then runs `rekisteri purge --dry-run --json`
and `rekisteri purge --json` as child processes and reports, for each, the wall time and the peak memory (the
child's maximum resident set), plus resident-set samples during the real run to show it stays flat: the purge
anonymises the 100,000 registrants and deletes their records in batches of 5,000 rows, one commit each.

    .venv/bin/python bench/purge.py
    REKISTERI_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rk_purge_bench  (dropped and recreated)
    BENCH_REGISTRANTS=100000 BENCH_RECORDS_EACH=10 BENCH_BATCH=5000
    BENCH_SHUFFLE=1: the records stored in random order rather than each person's together (the purge deletes
    by person, so this is the harder case for it)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from _common import dsn
from sqlalchemy.engine import make_url

from app.db import migrations

URL = os.environ.get("REKISTERI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/rk_purge_bench")
REGISTRANTS = int(os.environ.get("BENCH_REGISTRANTS", "100000"))
RECORDS_EACH = int(os.environ.get("BENCH_RECORDS_EACH", "10"))
BATCH = os.environ.get("BENCH_BATCH", "5000")
SHUFFLE = os.environ.get("BENCH_SHUFFLE", "") not in ("", "0")
CURRENT = max(1, REGISTRANTS // 10)
ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("rekisteri"))


async def fresh_database() -> None:
    """Drop and create the benchmark database (the purge is destructive, so every run starts from the seed)."""
    parsed = make_url(URL)
    admin = await asyncpg.connect(dsn(parsed.set(database="postgres").render_as_string(hide_password=False)))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


def _people(conn_rows: int, created: datetime, tag: str) -> list[tuple]:
    return [(uuid.uuid4(), "person", "Maija", f"Meikäläinen{tag}{i}", f"{tag}{i}@example.com", "fi", "active", 1,
             "bench", "[]", created, created) for i in range(conn_rows)]


async def seed(conn: asyncpg.Connection) -> None:
    """The singing school's profile, the ended and the current customers and their records, with COPY."""
    started, now = time.perf_counter(), datetime.now(UTC)
    document = json.loads((ROOT / "profiles" / "uniikkiaani.json").read_text())
    await conn.execute("INSERT INTO register_version (number, document, created_at, created_by) "
                       "VALUES (1, $1, now(), 'bench')", json.dumps(document))
    ended = _people(REGISTRANTS, now - timedelta(days=6 * 366), "ended")
    current = _people(CURRENT, now - timedelta(days=400), "current")
    columns = ["id", "kind", "given_name", "family_name", "email", "language", "status", "version", "created_by",
               "contact_persons", "created_at", "updated_at"]
    await conn.copy_records_to_table("registrant", columns=columns, records=ended + current)
    data = json.dumps({"product": "Laulutunti", "sum": "49.00"})
    columns = ["id", "registrant_id", "type", "occurred_at", "source", "external_id", "data", "data_category",
               "created_by", "created_at"]

    def records(people: list[tuple], newest: datetime) -> object:
        return ((uuid.uuid4(), person[0], "lesson", newest - timedelta(days=7 * j), "booking", f"{person[3]}-{j}",
                 data, "customer_relationship", "bench", newest) for person in people for j in range(RECORDS_EACH))

    await conn.copy_records_to_table("relationship_record", columns=columns,
                                     records=records(ended, now - timedelta(days=5 * 366)))
    await conn.copy_records_to_table("relationship_record", columns=columns,
                                     records=records(current, now - timedelta(days=30)))
    if SHUFFLE:  # as records arrive over the years: a person's records on pages of their own, among everyone's
        await conn.execute("CREATE TEMP TABLE shuffled AS SELECT * FROM relationship_record ORDER BY random(); "
                           "TRUNCATE relationship_record; INSERT INTO relationship_record SELECT * FROM shuffled; "
                           "DROP TABLE shuffled")
    await conn.execute("ANALYZE")
    print(f"seeded {REGISTRANTS + CURRENT:,} registrants and {(REGISTRANTS + CURRENT) * RECORDS_EACH:,} records "
          f"in {time.perf_counter() - started:.0f} s")


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_purge(*args: str) -> tuple[float, int, list[int], str]:
    """Run `rekisteri purge ARGS`; its wall time, peak RSS (KiB), RSS samples every 0.2 s, and stdout."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("REKISTERI_")},
           "REKISTERI_DATABASE_URL": URL, "REKISTERI_JWT_SECRET": "bench-secret-" + "b" * 40}
    with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        child = subprocess.Popen([CLI, "purge", "--batch-size", BATCH, *args], env=env, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL)
        samples = []
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if (rss := _rss_kib(child.pid)) is not None:
                samples.append(rss)
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        out.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"rekisteri purge {' '.join(args)} failed: exit {os.waitstatus_to_exitcode(status)}")
        return elapsed, usage.ru_maxrss, samples, out.read()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _spread(samples: list[int]) -> str:
    if not samples:
        return "no samples"
    quarter = [samples[min(len(samples) - 1, len(samples) * q // 4)] // 1024 for q in (1, 2, 3)]
    return f"RSS at 25/50/75 % of the run {quarter[0]}/{quarter[1]}/{quarter[2]} MiB ({len(samples)} samples)"


async def main() -> None:
    await fresh_database()
    await asyncio.to_thread(migrations.upgrade, URL)  # alembic runs its own event loop
    conn = await asyncpg.connect(dsn(URL))
    try:
        await seed(conn)
    finally:
        await conn.close()
    print(f"load average before the runs: {_load()}")
    dry_time, dry_peak, _, dry_out = run_purge("--dry-run", "--json")
    counted = {line["category"]: line["rows_acted_on"] for line in map(json.loads, dry_out.splitlines())}
    print(f"dry run: {dry_time:.1f} s, peak {dry_peak // 1024} MiB; would act on "
          f"{counted['customer_relationship']:,} records and {counted['contact_details']:,} registrants")
    real_time, real_peak, samples, real_out = run_purge("--json")
    acted = {line["category"]: line["rows_acted_on"] for line in map(json.loads, real_out.splitlines())}
    conn = await asyncpg.connect(dsn(URL))
    try:
        left = await conn.fetchval("SELECT count(*) FROM relationship_record")
        erased = await conn.fetchval("SELECT count(*) FROM registrant WHERE status = 'erased'")
    finally:
        await conn.close()
    rate = acted["customer_relationship"] / real_time
    print(f"purge: {real_time:.1f} s, peak {real_peak // 1024} MiB ({real_peak / max(dry_peak, 1):.2f}x the dry run's); "
          f"{_spread(samples)}")
    print(f"deleted {acted['customer_relationship']:,} records ({rate:,.0f}/s) and anonymised "
          f"{acted['contact_details']:,} registrants; {left:,} current records kept, {erased:,} registrants erased")
    again_time, _, _, again_out = run_purge("--json")
    second = sum(json.loads(line)["rows_acted_on"] for line in again_out.splitlines())
    print(f"second run: {again_time:.1f} s, acted on {second} rows; load average after the runs: {_load()}")


if __name__ == "__main__":
    asyncio.run(main())

"""Benchmark: the audited registrant lookup against what an integrator would otherwise run, on PostgreSQL with
100,000 registrants and 1,000,000 records.

Shows the query plans of the email and external-reference lookups, then starts side by side
(a) `bench/jwt_only_app.py`: FastAPI checking the same JWT, no database (the ceiling of an authenticated endpoint),
(b) `bench/orm_app.py`: the usual FastAPI + SQLAlchemy ORM app (load the user, ORM select by email, no audit),
(c) Rekisteri `GET /v1/registrants?email=` (audited) with 1 and with 2 uvicorn workers, and one `rekisteri worker`
    sealing the audit chain as in production,
(d) the same with 1 worker and REKISTERI_LEAN_ROUTES=false (every request through its FastAPI route),
and measures each with wrk at 1 and 32 connections (random existing emails) over interleaved rounds; prints the
medians (req/s, p50, p99), the ratios, and the audit sealing lag seen right after the load.

    .venv/bin/python bench/registrants_lookup.py
    REKISTERI_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rk_bench  (the default)
    BENCH_ROUNDS=3 BENCH_SECONDS=5  (per service, per connection count, per round; medians are reported)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from _common import account_token, dsn, ensure_database, free_port
from sqlalchemy.dialects import postgresql

from app.auth.roles import Role
from app.db import migrations
from app.db.pagination import PageParams
from app.registrants import repository as repo

URL = os.environ.get("REKISTERI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/rk_bench")
REGISTRANTS, RECORDS_EACH = 100_000, 10
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
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


def wrk(url: str, token: str, script: str, connections: int) -> tuple[float, float, float]:
    """Requests per second, p50 and p99 in ms that wrk measured (non-2xx answers are printed)."""
    command = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{SECONDS}s", "--latency", "-s", script,
               "-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        print(out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rate, _ms(out, "50%"), _ms(out, "99%")


def _ms(out: str, quantile: str) -> float:
    value, unit = re.search(rf"^\s+{quantile}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


@contextlib.contextmanager
def started(name: str, command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """A server process (its own process group) answering on `port`; stopped at the end."""
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/v1/registrants", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{name} did not start")
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> int:
    """Seed, explain, start the four services and the sequencer, measure interleaved rounds, report."""
    asyncio.run(ensure_database(URL))
    migrations.upgrade(URL)

    async def prepare() -> tuple[str, str]:
        conn = await asyncpg.connect(dsn(URL))
        try:
            await seed(conn)
            await explain(conn)
            return (await account_token(conn, url=URL, secret=SECRET, role=Role.staff),
                    await account_token(conn, url=URL, secret=SECRET, role=Role.auditor))
        finally:
            await conn.close()

    token, auditor = asyncio.run(prepare())
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "REKISTERI_DATABASE_URL": URL, "REKISTERI_JWT_SECRET": SECRET,
           "REKISTERI_WORKER_IN_PROCESS": "false", "REKISTERI_AUDIT_SEQUENCER_IN_PROCESS": "false",
           "REKISTERI_LOG_LEVEL": "WARNING", "REKISTERI_DB_POOL_SIZE": os.environ.get("REKISTERI_DB_POOL_SIZE", "8")}
    ports = [free_port() for _ in range(5)]
    uvicorn = [str(bin_dir / "uvicorn"), "--app-dir", "bench", "--log-level", "warning", "--no-access-log"]
    rekisteri = str(bin_dir / "rekisteri")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(LUA)
    with contextlib.ExitStack() as stack:
        sealer = subprocess.Popen([rekisteri, "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        stack.callback(lambda: (os.killpg(sealer.pid, signal.SIGTERM), sealer.wait(timeout=30)))
        services = {
            "jwt-only": stack.enter_context(started("jwt-only", [*uvicorn, "jwt_only_app:app", "--port", str(ports[0])],
                                                    env, ports[0])),
            "usual ORM": stack.enter_context(started("usual ORM", [*uvicorn, "orm_app:app", "--port", str(ports[1])],
                                                     env, ports[1])),
            "rekisteri 1w": stack.enter_context(started("rekisteri 1w", [rekisteri, "serve", "--port", str(ports[2]),
                                                                         "--workers", "1"], env, ports[2])),
            "rekisteri 2w": stack.enter_context(started("rekisteri 2w", [rekisteri, "serve", "--port", str(ports[3]),
                                                                         "--workers", "2"], env, ports[3])),
            # The same with every request through its FastAPI route: what the lean route (app/core/lean.py) saves.
            "route only 1w": stack.enter_context(started("route only 1w", [rekisteri, "serve", "--port", str(ports[4]),
                                                                           "--workers", "1"],
                                                         {**env, "REKISTERI_LEAN_ROUTES": "false"}, ports[4])),
        }
        for name, base in services.items():
            sample = httpx.get(base + "/v1/registrants?email=person4242@example.com",
                               headers={"Authorization": f"Bearer {token}"})
            assert sample.status_code == 200, (name, sample.text)
            if name != "jwt-only":
                assert len(sample.json()["items"]) == 1, (name, sample.text)
        results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
        started_load = _load()
        lags = []
        for round_ in range(ROUNDS):
            for connections in (1, 32):
                for name, base in services.items():
                    results.setdefault((name, connections), []).append(
                        wrk(base + "/v1/registrants", token, lua.name, connections))
                    if name.startswith("rekisteri") and connections == 32:
                        lags.append(asyncio.run(backlog()))
            print(f"round {round_ + 1}: " + "; ".join(
                f"{name} c{c} {runs[-1][0]:,.0f}/s" for (name, c), runs in results.items()), flush=True)
        time.sleep(1)
        verified = httpx.get(services["rekisteri 1w"] + "/v1/audit/verify",
                             headers={"Authorization": f"Bearer {auditor}"}, timeout=600).json()
    report(results, lags, verified)
    print(f"load average before the rounds {started_load}, after {_load()}; "
          f"REKISTERI_AUDIT_READ_COMMIT={env.get('REKISTERI_AUDIT_READ_COMMIT', 'sync')}, "
          f"REKISTERI_LEAN_ROUTES={env.get('REKISTERI_LEAN_ROUTES', 'true')}")
    return 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def backlog() -> tuple[int, float]:
    """Audit entries waiting for the sequencer, and the age of the oldest, in seconds."""
    conn = await asyncpg.connect(dsn(URL))
    try:
        row = await conn.fetchrow("SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(at)), 0) AS age "
                                  "FROM audit_pending")
        return row["n"], float(row["age"])
    finally:
        await conn.close()


def report(results: dict[tuple[str, int], list[tuple[float, float, float]]], lags: list[tuple[int, float]],
           verified: dict) -> None:
    """Medians per service and connection count, the ratios the issue sets targets for, and the sealing lag."""
    med = {key: tuple(statistics.median(run[i] for run in runs) for i in range(3)) for key, runs in results.items()}
    print(f"\nmedians of {ROUNDS} rounds, {SECONDS}s each (GET /v1/registrants?email=, random existing emails):")
    print(f"{'service':<14} {'c1 req/s':>9} {'c1 p50 ms':>10} {'c32 req/s':>10} {'c32 p50 ms':>11} {'c32 p99 ms':>11}")
    for name in dict.fromkeys(name for name, _ in med):
        one, many = med[(name, 1)], med[(name, 32)]
        print(f"{name:<14} {one[0]:>9,.0f} {one[1]:>10.2f} {many[0]:>10,.0f} {many[1]:>11.2f} {many[2]:>11.2f}")
    rk1, rk2, orm, jwt, plain = (med[(n, 32)][0] for n in ("rekisteri 1w", "rekisteri 2w", "usual ORM", "jwt-only",
                                                            "route only 1w"))
    print(f"\nat 32 connections: rekisteri/usual ORM {rk1 / orm:.2f} (target >= 2), rekisteri/jwt-only {rk1 / jwt:.2f} "
          f"(target >= 0.35), 2 workers/1 worker {rk2 / rk1:.2f} (target >= 1.3)")
    print(f"lean route / route only (1 worker, 32 connections) {rk1 / plain:.2f}")
    print(f"rekisteri p50 at 1 connection {med[('rekisteri 1w', 1)][1]:.2f} ms (target <= 1.5), "
          f"p99 at 32 connections {med[('rekisteri 1w', 32)][2]:.2f} ms (target <= 40)")
    print(f"audit right after each 32-connection run: at most {max(n for n, _ in lags)} unsealed, oldest "
          f"{max(age for _, age in lags):.2f} s (target <= 1 s); then GET /v1/audit/verify: ok {verified['ok']}, "
          f"{verified['entries']:,} entries, {verified['unsealed']} unsealed")


if __name__ == "__main__":
    sys.exit(main())

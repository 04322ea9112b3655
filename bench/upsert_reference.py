"""Benchmark: an integration's writes on PostgreSQL with 100,000 registrants and 1,000,000 records (the seed of
`bench/registrants_lookup.py`, in its database).

Starts side by side
(a) `bench/orm_upsert_app.py`: the usual FastAPI + SQLAlchemy ORM upsert by reference, no audit, no history (the
    anchor: what an integrator would write themselves),
(b) Rekisteri (`rekisteri serve`, one worker) with one `rekisteri worker` sealing the audit chain as in production,
and measures `PUT /v1/registrants/by-ref/booking/{id}` as the booking integration with wrk at 1 and 32 connections
over interleaved rounds: a share of the requests (BENCH_NEW_SHARE, 0.25) push a reference never seen (an insert,
201), the rest one of the 100,000 seeded references at random (an update with a new given name, 200). Then, on
Rekisteri only, the integration's `POST /v1/registrants` (a new registrant with a new reference) and
`POST /v1/registrants/{id}/consents` (a newsletter grant or withdrawal of a random seeded registrant). Prints the
medians (req/s, p50, p99), the ratios to the anchor, the round trips each write sends to PostgreSQL (counted on
the app's engine in-process) and the audit sealing lag right after the load.

    .venv/bin/python bench/upsert_reference.py
    REKISTERI_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rk_bench  (the default, as the lookup's)
    BENCH_ROUNDS=3 BENCH_SECONDS=5  (per service, per connection count, per round; medians are reported)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import dsn, ensure_database, free_port  # noqa: E402 - shared benchmark helpers
from registrants_lookup import SECRET, URL, backlog, seed, started, wrk  # noqa: E402 - the sibling benchmark's seed and wrk

from app.auth.roles import ROLE_SCOPES, Role  # noqa: E402
from app.core import security  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.db import migrations  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
NEW_SHARE = float(os.environ.get("BENCH_NEW_SHARE", "0.25"))
ROOT = Path(__file__).resolve().parents[1]
SEEDED = 100_000
# Each wrk thread has its own Lua state: `setup` numbers them, so their new references never collide; `tag` keeps
# the references of every run (and service) apart.
_THREADS = """
local next_id = 1
setup = function(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
init = function(args)
  math.randomseed(os.time() + tid * 7919)
  n = 0
  wrk.headers["Content-Type"] = "application/json"
end
"""
UPSERT_LUA = _THREADS + """
request = function()
  n = n + 1
  local ref
  if math.random() < %(share)f then
    ref = "%(tag)s-" .. tid .. "-" .. n
  else
    ref = "b" .. math.random(0, %(last)d)
  end
  local body = '{"kind":"person","given_name":"Maija' .. math.random(0, 999999) ..
    '","family_name":"Meikäläinen","email":"upsert' .. n .. '@example.com","language":"fi","customer_types":["course"]}'
  return wrk.format("PUT", "/v1/registrants/by-ref/booking/" .. ref, nil, body)
end
"""
CREATE_LUA = _THREADS + """
request = function()
  n = n + 1
  local body = '{"kind":"person","given_name":"Aino","family_name":"Virtanen","email":"create' .. n ..
    '@example.com","external_refs":[{"system":"booking","id":"%(tag)s-' .. tid .. '-' .. n .. '"}]}'
  return wrk.format("POST", "/v1/registrants", nil, body)
end
"""
CONSENT_LUA = _THREADS + """
ids = {%(ids)s}
request = function()
  local action = "grant"
  if math.random() < 0.5 then action = "withdraw" end
  local body = '{"action":"' .. action .. '","purpose":"newsletter","channel":"email","source":"booking",' ..
    '"evidence":{"text":"Yes, send me the newsletter"}}'
  return wrk.format("POST", "/v1/registrants/" .. ids[math.random(#ids)] .. "/consents", nil, body)
end
"""


async def integration_token(conn: asyncpg.Connection) -> str:
    """A booking integration client made directly in the database, and a token for it."""
    client_id, now = uuid.uuid4(), datetime.now(UTC)
    await conn.execute(
        "INSERT INTO api_client (id, name, role, system, secret_hash, token_generation, created_at, updated_at) "
        "VALUES ($1, 'Bench booking', 'integration', 'booking', '!', 1, $2, $2)", client_id, now)
    token, _ = security.issue_token(Settings(database_url=URL, jwt_secret=SECRET), sub=f"client:{client_id}",
                                    role=Role.integration.value,
                                    scopes=sorted(s.value for s in ROLE_SCOPES[Role.integration]), generation=1,
                                    ttl_seconds=3600)
    return token


async def ensure_profile(conn: asyncpg.Connection) -> None:
    """The course company's register profile (its newsletter purpose takes the consents)."""
    if not await conn.fetchval("SELECT count(*) FROM register_version"):
        document = json.loads((ROOT / "profiles" / "selfluencer.json").read_text())
        await conn.execute("INSERT INTO register_version (number, document, created_at, created_by) "
                           "VALUES (1, $1, now(), 'bench')", json.dumps(document))


def lua_file(template: str, **values: object) -> str:
    """A wrk script from a template, with a fresh tag for the new references it makes."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(template % {"tag": uuid.uuid4().hex[:10], "share": NEW_SHARE, "last": SEEDED - 1, **values})
    return lua.name


async def round_trips(token: str, sample: list[str]) -> None:
    """The statements (and BEGIN/COMMIT) each write sends to PostgreSQL, counted in-process on the app's engine
    (the request with a warm principal cache, as under load), with the statements' first words."""
    from sqlalchemy import event

    from app.db import driver
    from app.main import create_app

    app = create_app(Settings(database_url=URL, jwt_secret=SECRET, worker_in_process=False,
                              audit_sequencer_in_process=False, log_level="WARNING"))
    seen: list[str] = []
    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(" ".join(sql.split())[:90]))

    def transaction(name: str) -> Any:
        # In autocommit SQLAlchemy still marks a begin and commit, but nothing is sent.
        return lambda conn: None if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT" \
            else seen.append(name)

    event.listen(engine, "begin", transaction("BEGIN"))
    event.listen(engine, "commit", transaction("COMMIT"))
    # Statements run on the driver itself (app/db/driver.py) pass no SQLAlchemy event: count them where they start.
    through_driver = driver.fetchrow

    async def counted(conn: Any, stmt: Any, values: dict[str, Any]) -> Any:
        seen.append("(driver) " + " ".join(driver.compiled(stmt, conn.dialect).sql.split())[:80])
        return await through_driver(conn, stmt, values)

    driver.fetchrow = counted
    person = {"kind": "person", "given_name": "Maija", "family_name": "Meikäläinen", "language": "fi",
              "customer_types": ["course"]}
    requests = {
        "upsert, update": lambda: ("PUT", f"/v1/registrants/by-ref/booking/b{uuid.uuid4().int % SEEDED}",
                                   {**person, "given_name": f"M{uuid.uuid4().hex[:6]}"}),
        "upsert, insert": lambda: ("PUT", f"/v1/registrants/by-ref/booking/s-{uuid.uuid4().hex}", person),
        "create": lambda: ("POST", "/v1/registrants",
                           {**person, "external_refs": [{"system": "booking", "id": f"s-{uuid.uuid4().hex}"}]}),
        "consent": lambda: ("POST", f"/v1/registrants/{sample[uuid.uuid4().int % len(sample)]}/consents",
                            {"action": "grant", "purpose": "newsletter", "channel": "email", "source": "booking"}),
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        for label, make in requests.items():
            method, path, body = make()
            (await http.request(method, path, json=body)).raise_for_status()  # warms the caches
            seen.clear()
            method, path, body = make()
            (await http.request(method, path, json=body)).raise_for_status()
            print(f"{label}: {len(seen)} round trips: " + " | ".join(seen))
    await app.state.db.engine.dispose()


def main() -> int:
    """Seed, start both services and the sequencer, measure interleaved rounds, report."""
    asyncio.run(ensure_database(URL))
    migrations.upgrade(URL)

    async def prepare() -> tuple[str, list[str]]:
        conn = await asyncpg.connect(dsn(URL))
        try:
            await seed(conn)
            await ensure_profile(conn)
            sample = [str(r[0]) for r in await conn.fetch(
                "SELECT registrant_id FROM registrant_ref WHERE system = 'booking' AND external_id LIKE 'b%' "
                "ORDER BY random() LIMIT 1000")]
            return await integration_token(conn), sample
        finally:
            await conn.close()

    token, sample = asyncio.run(prepare())
    headers = {"Authorization": f"Bearer {token}"}
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "REKISTERI_DATABASE_URL": URL, "REKISTERI_JWT_SECRET": SECRET,
           "REKISTERI_WORKER_IN_PROCESS": "false", "REKISTERI_AUDIT_SEQUENCER_IN_PROCESS": "false",
           "REKISTERI_LOG_LEVEL": "WARNING", "REKISTERI_DB_POOL_SIZE": os.environ.get("REKISTERI_DB_POOL_SIZE", "8")}
    ports = [free_port() for _ in range(2)]
    uvicorn = [str(bin_dir / "uvicorn"), "--app-dir", "bench", "--log-level", "warning", "--no-access-log"]
    rekisteri = str(bin_dir / "rekisteri")
    person = {"kind": "person", "given_name": "Maija", "family_name": "Meikäläinen", "language": "fi"}
    with contextlib.ExitStack() as stack:
        sealer = subprocess.Popen([rekisteri, "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        stack.callback(lambda: (os.killpg(sealer.pid, signal.SIGTERM), sealer.wait(timeout=30)))
        services = {
            "usual ORM": stack.enter_context(started("usual ORM", [*uvicorn, "orm_upsert_app:app", "--port",
                                                                   str(ports[0])], env, ports[0])),
            "rekisteri": stack.enter_context(started("rekisteri", [rekisteri, "serve", "--port", str(ports[1]),
                                                                   "--workers", "1"], env, ports[1])),
        }
        for name, base in services.items():
            for ref, status in ((f"check-{uuid.uuid4().hex}", 201), ("b4242", 200)):
                answer = httpx.put(f"{base}/v1/registrants/by-ref/booking/{ref}", headers=headers, json=person)
                assert answer.status_code == status, (name, answer.status_code, answer.text)
        rk = services["rekisteri"]
        asyncio.run(round_trips(token, sample))
        results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
        lags = []
        ids = ", ".join(f'"{i}"' for i in sample)
        for round_ in range(ROUNDS):
            for connections in (1, 32):
                for name, base in services.items():
                    results.setdefault((f"upsert {name}", connections), []).append(
                        wrk(base + "/", token, lua_file(UPSERT_LUA), connections))
                for label, template in (("create rekisteri", CREATE_LUA), ("consent rekisteri", CONSENT_LUA)):
                    results.setdefault((label, connections), []).append(
                        wrk(rk + "/", token, lua_file(template, ids=ids), connections))
                if connections == 32:
                    lags.append(asyncio.run(backlog()))
            print(f"round {round_ + 1}: " + "; ".join(
                f"{name} c{c} {runs[-1][0]:,.0f}/s" for (name, c), runs in results.items()), flush=True)
        time.sleep(1)
    report(results, lags)
    return 0


def report(results: dict[tuple[str, int], list[tuple[float, float, float]]], lags: list[tuple[int, float]]) -> None:
    """Medians per service and connection count, the ratios to the anchor, and the sealing lag."""
    med = {key: tuple(statistics.median(run[i] for run in runs) for i in range(3)) for key, runs in results.items()}
    print(f"\nmedians of {ROUNDS} rounds, {SECONDS}s each ({NEW_SHARE:.0%} of the upserts new references):")
    print(f"{'what':<19} {'c1 req/s':>9} {'c1 p50 ms':>10} {'c32 req/s':>10} {'c32 p50 ms':>11} {'c32 p99 ms':>11}")
    for name in dict.fromkeys(name for name, _ in med):
        one, many = med[(name, 1)], med[(name, 32)]
        print(f"{name:<19} {one[0]:>9,.0f} {one[1]:>10.2f} {many[0]:>10,.0f} {many[1]:>11.2f} {many[2]:>11.2f}")
    orm = {c: med[("upsert usual ORM", c)][0] for c in (1, 32)}
    for name in ("upsert rekisteri", "create rekisteri", "consent rekisteri"):
        print(f"{name} / usual ORM upsert: {med[(name, 1)][0] / orm[1]:.2f} at 1 connection, "
              f"{med[(name, 32)][0] / orm[32]:.2f} at 32")
    print(f"audit right after each 32-connection round: at most {max(n for n, _ in lags)} unsealed, oldest "
          f"{max(age for _, age in lags):.2f} s (target <= 1 s)")


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the consent ledger on PostgreSQL with 100,000 registrants and 1,000,000 ledger events.

Reuses the registrants benchmark's database and seed (100,000 registrants), adds 10 ledger events per
registrant and the state derived from them by the service's own `derive`, then starts `rekisteri serve`
(one worker) and measures, side by side in one run:

- `GET /v1/auth/me` (authentication only: token check plus the revocation read) against the audited
  `GET /v1/registrants/{id}/consents` of random registrants (wrk -t2 -c32), and their ratio (target >= 0.30);
- streaming the whole audience of a consent purpose with 50,000 eligible people through
  `GET /v1/audience` page by page, in rows per second (target >= 20,000 rows/s): every candidate row goes through
  the rule engine (`app/consents/rules.decide`) and gets its opt-out token, in address order.

    .venv/bin/python bench/consents.py
    REKISTERI_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rk_bench  (the default)
    BENCH_ROUNDS=3 BENCH_SECONDS=10
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from app.consents.state import Action, LedgerEvent, derive
from app.db import migrations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import account_token, dsn, ensure_database, served  # noqa: E402 - shared benchmark helpers
from registrants_lookup import ROUNDS, SECRET, URL, seed, wrk  # noqa: E402 - the sibling benchmark's seed

from app.auth.roles import Role  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EVENTS_EACH = 10
CHANNELS = {"newsletter": ["email"], "direct_marketing": ["email", "sms", "phone", "post"],
            "market_research": ["email", "phone"], "surveys": ["email"], "profiling": []}
MARKETING = frozenset({"newsletter", "direct_marketing", "profiling"})


def _events_for(index: int, now: datetime) -> list[tuple]:
    """Ten events; every other registrant ends with a newsletter grant (50,000 eligible in all)."""
    events = []
    for j in range(EVENTS_EACH - 1):
        action = "grant" if j % 2 == 0 else "withdraw"
        events.append(("newsletter", "email", action, now - timedelta(days=400 - j)))
    events.append(("newsletter", "email", "grant" if index % 2 == 0 else "withdraw", now - timedelta(days=10)))
    return events


async def seed_ledger(conn: asyncpg.Connection) -> None:
    """A profile version, 10 events per registrant, and the derived state rows (skipped when present)."""
    if not await conn.fetchval("SELECT count(*) FROM register_version"):
        document = json.loads((ROOT / "profiles" / "selfluencer.json").read_text())
        await conn.execute("INSERT INTO register_version (number, document, created_at, created_by) "
                           "VALUES (1, $1, now(), 'bench')", json.dumps(document))
    if await conn.fetchval("SELECT count(*) FROM consent_event") >= 100_000 * EVENTS_EACH:
        print("ledger already seeded")
        return
    started, now = time.perf_counter(), datetime.now(UTC)
    ids = [r[0] for r in await conn.fetch("SELECT id FROM registrant ORDER BY created_at, id")]
    events, states = [], []
    for i, rid in enumerate(ids):
        ledger = []
        for seq, (purpose, channel, action, at) in enumerate(_events_for(i, now)):
            event_id = uuid.uuid4()
            events.append((event_id, rid, purpose, channel, action, "web_form", "{}", "self", at, at, "bench", 1))
            ledger.append(LedgerEvent(event_id, seq, purpose, channel, Action(action), at))
        for (purpose, channel), decision in derive(ledger, channels=CHANNELS, direct_marketing=MARKETING).items():
            states.append((rid, purpose, channel, decision.state.value, decision.event_id, now))
    await conn.copy_records_to_table("consent_event", columns=[
        "id", "registrant_id", "purpose", "channel", "action", "source", "evidence", "given_by", "effective_at",
        "recorded_at", "recorded_by", "profile_version"], records=events)
    await conn.copy_records_to_table("consent_state", columns=[
        "registrant_id", "purpose", "channel", "state", "event_id", "updated_at"], records=states)
    await conn.execute("ANALYZE")
    print(f"seeded {len(events):,} ledger events and {len(states):,} state rows in {time.perf_counter() - started:.0f}s")


def stream_audience(base: str, token: str) -> tuple[int, float]:
    """Fetch every page of the newsletter/email audience; rows and seconds."""
    rows, cursor, started = 0, None, time.perf_counter()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        while True:
            params = {"purpose": "newsletter", "channel": "email", "limit": 5000}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/audience", params=params)
            page.raise_for_status()
            body = page.json()
            rows += len(body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                return rows, time.perf_counter() - started


def main() -> int:
    """Seed, serve, measure, report."""
    asyncio.run(ensure_database(URL))
    migrations.upgrade(URL)

    async def prepare() -> tuple[str, list[str]]:
        conn = await asyncpg.connect(dsn(URL))
        try:
            await seed(conn)
            await seed_ledger(conn)
            sample = [str(r[0]) for r in await conn.fetch("SELECT id FROM registrant ORDER BY random() LIMIT 1000")]
            return await account_token(conn, url=URL, secret=SECRET, role=Role.staff), sample
        finally:
            await conn.close()

    token, sample = asyncio.run(prepare())
    lua = "ids = {%s}\nrequest = function()\n  return wrk.format(nil, \"/v1/registrants/\" .. ids[math.random(#ids)] .. \"/consents\")\nend\n" % (
        ", ".join(f'"{i}"' for i in sample))
    with served(URL, SECRET) as base:
        check = httpx.get(f"{base}/v1/registrants/{random.choice(sample)}/consents",
                          headers={"Authorization": f"Bearer {token}"})
        assert check.status_code == 200 and check.json()["states"], check.text
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(lua)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as plain:
            plain.write("-- the same request every time\n")
        baseline, state = [], []
        # Without wrk only the audience stream is measured (the consent-state ratio needs wrk).
        for round_ in range(ROUNDS if shutil.which("wrk") else 0):
            baseline.append(wrk(base + "/v1/auth/me", token, plain.name, 32)[0])
            state.append(wrk(base + "/v1/registrants", token, script.name, 32)[0])
            print(f"round {round_ + 1}: /v1/auth/me {baseline[-1]:,.0f} req/s, consent state {state[-1]:,.0f} req/s, "
                  f"ratio {state[-1] / baseline[-1]:.2f}")
        streams = [stream_audience(base, token) for _ in range(ROUNDS)]
    if baseline:
        b, s = statistics.median(baseline), statistics.median(state)
        paired = statistics.median(x / y for x, y in zip(state, baseline, strict=True))
        print(f"\nmedian of {ROUNDS}: auth only (GET /v1/auth/me) {b:,.0f} req/s; audited consent state "
              f"{s:,.0f} req/s; ratio {s / b:.2f}; median paired ratio {paired:.2f} (target >= 0.30)")
    else:
        print("\nwrk not found: the consent-state ratio was not measured")
    rows = streams[0][0]
    rate = statistics.median(n / t for n, t in streams)
    print(f"audience newsletter/email: {rows:,} rows streamed at {rate:,.0f} rows/s (target >= 20,000 rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

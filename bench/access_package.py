"""Benchmark: the access package of a heavy registrant on PostgreSQL, built and downloaded through the API.

100,000 registrants in the database; one of them has 10,000 relationship records and 1,000 consent ledger
events. Starts `rekisteri serve` (one worker) and, per round, files an access request about that person,
verifies and starts it, then times `complete` (which builds and freezes the package) and the download of
`GET /v1/requests/{id}/export`, against the 1-second target, with `GET /v1/auth/me` as the baseline.

    .venv/bin/python bench/access_package.py
    REKISTERI_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rk_rq_bench  (the default)
    BENCH_ROUNDS=5
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from _common import account_token, dsn, ensure_database, served

from app.auth.roles import Role
from app.db import migrations

URL = os.environ.get("REKISTERI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/rk_rq_bench")
REGISTRANTS, RECORDS, EVENTS = 100_000, 10_000, 1_000
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECRET = "bench-secret-" + "b" * 40
ROOT = Path(__file__).resolve().parents[1]
HEAVY_EMAIL = "heavy.person@example.com"


async def seed(conn: asyncpg.Connection) -> uuid.UUID:
    """Fill 100,000 registrants and the heavy one's records and ledger with COPY; the heavy one's id."""
    heavy = await conn.fetchval("SELECT id FROM registrant WHERE email = $1", HEAVY_EMAIL)
    if heavy is not None:
        print("already seeded")
        return heavy
    started, now = time.perf_counter(), datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(REGISTRANTS - 1)]
    heavy = uuid.uuid4()
    await conn.copy_records_to_table("registrant", columns=[
        "id", "kind", "given_name", "family_name", "email", "phone", "language", "status", "version", "created_by",
        "contact_persons", "created_at", "updated_at"], records=[
        (rid, "person", "Maija", f"Meikäläinen{i}", f"person{i}@example.com", f"+35840{i:07d}", "fi", "active", 1,
         "bench", "[]", now - timedelta(seconds=REGISTRANTS - i), now) for i, rid in enumerate(ids)]
        + [(heavy, "person", "Raskas", "Asiakas", HEAVY_EMAIL, "+358401234567", "fi", "active", 1, "bench", "[]", now,
            now)])
    await conn.copy_records_to_table("relationship_record", columns=[
        "id", "registrant_id", "type", "occurred_at", "source", "external_id", "data", "data_category", "created_by",
        "created_at"], records=[
        (uuid.uuid4(), heavy, ("lesson", "order", "invoice")[j % 3], now - timedelta(hours=j), "booking", f"h{j}",
         json.dumps({"product": "Laulutunti 45 min", "sum": "49.00", "teacher": "Opettaja", "room": "Sörnäinen 2"}),
         "accounting_vouchers" if j % 3 == 2 else "customer_relationship", "bench", now) for j in range(RECORDS)]
        + [(uuid.uuid4(), rid, "lesson", now, "booking", f"r{i}", '{"product": "Laulutunti"}',
            "customer_relationship", "bench", now) for i, rid in enumerate(ids)])
    events = [(uuid.uuid4(), heavy, "newsletter", "email", ("grant", "withdraw")[k % 2], "web_form",
               json.dumps({"text": "Haluan uutiskirjeen.", "policy_version": "2026-11", "reference": f"form-{k}"}),
               "self", now - timedelta(minutes=EVENTS - k), now - timedelta(minutes=EVENTS - k), "bench", 1)
              for k in range(EVENTS)]
    await conn.copy_records_to_table("consent_event", columns=[
        "id", "registrant_id", "purpose", "channel", "action", "source", "evidence", "given_by", "effective_at",
        "recorded_at", "recorded_by", "profile_version"], records=events)
    await conn.execute("INSERT INTO consent_state (registrant_id, purpose, channel, state, event_id, updated_at) "
                       "VALUES ($1, 'newsletter', 'email', 'withdrawn', $2, $3)", heavy, events[-1][0], now)
    await conn.execute("ANALYZE")
    print(f"seeded {REGISTRANTS:,} registrants, {RECORDS:,} records and {EVENTS:,} ledger events on one of them "
          f"in {time.perf_counter() - started:.0f}s")
    return heavy


def _profile() -> dict:
    """The course company's profile accepting requests over the API too."""
    profile = json.loads((ROOT / "profiles" / "selfluencer.json").read_text())
    profile["rights_policy"]["request_channels"] = ["letter", "in_person", "email", "web_form", "api"]
    return profile


def one_round(http: httpx.Client, heavy: uuid.UUID) -> tuple[float, float, int, float]:
    """File, verify and start a request, then time complete (build) and export (download); and a baseline call."""
    filed = http.post("/v1/requests", json={"type": "access", "registrant_id": str(heavy), "channel": "api",
                                            "requester": {"name": "Raskas Asiakas"}})
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    for action in ({"action": "verify", "method": "strong_electronic_identification"}, {"action": "start"}):
        assert http.post(f"/v1/requests/{request_id}/transitions", json=action).status_code == 200
    started = time.perf_counter()
    done = http.post(f"/v1/requests/{request_id}/transitions", json={"action": "complete"})
    built = time.perf_counter()
    exported = http.get(f"/v1/requests/{request_id}/export")
    downloaded = time.perf_counter()
    assert done.status_code == 200 and exported.status_code == 200, (done.text, exported.status_code)
    package = exported.json()
    assert len(package["data"]["relationship_records"]) == RECORDS
    assert len(package["data"]["consent_events"]) == EVENTS
    base_started = time.perf_counter()
    assert http.get("/v1/auth/me").status_code == 200
    baseline = time.perf_counter() - base_started
    return built - started, downloaded - built, len(exported.content), baseline


def main() -> int:
    """Seed, serve, measure, report."""
    asyncio.run(ensure_database(URL))
    migrations.upgrade(URL)

    async def prepare() -> tuple[uuid.UUID, str]:
        """Seed and make a controller token."""
        conn = await asyncpg.connect(dsn(URL))
        try:
            return await seed(conn), await account_token(conn, url=URL, secret=SECRET, role=Role.controller)
        finally:
            await conn.close()

    heavy, token = asyncio.run(prepare())
    results = []
    with served(URL, SECRET) as base:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            assert http.put("/v1/register", json=_profile()).status_code == 200
            one_round(http, heavy)  # warm-up: imports, caches, connections
            for round_ in range(ROUNDS):
                build, download, size, baseline = one_round(http, heavy)
                results.append((build, download))
                print(f"round {round_ + 1}: build (complete) {build * 1000:.0f} ms, download {download * 1000:.0f} ms, "
                      f"total {(build + download) * 1000:.0f} ms, {size / 1e6:.1f} MB; "
                      f"GET /v1/auth/me {baseline * 1000:.1f} ms")
    build = statistics.median(r[0] for r in results)
    download = statistics.median(r[1] for r in results)
    total = statistics.median(r[0] + r[1] for r in results)
    print(f"\nmedian of {ROUNDS}: build {build * 1000:.0f} ms + download {download * 1000:.0f} ms = "
          f"{total * 1000:.0f} ms for {RECORDS:,} records and {EVENTS:,} ledger events among {REGISTRANTS:,} "
          f"registrants; {total:.2f} of the 1 s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())

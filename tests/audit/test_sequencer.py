"""The audit sequencer: entries written unsealed by their transaction, sealed off the request path in commit order,
none lost when a sequencer dies mid-batch, the backlog reported by GET /v1/audit/verify."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.audit import chain
from app.audit import service as audit_service
from app.audit.models import AuditEntry, AuditPending
from app.audit.sequencer import Sequencer
from app.auth.principal import SYSTEM
from app.db.session import AUDIT_SEAL_INLINE, Database
from tests.conftest import TEST_SECRET


def _sequencer_settings(settings, **changes):
    return settings.model_copy(update={"audit_sealing": "sequencer", "audit_seal_poll_seconds": 0.01, **changes})


async def _seqs(database: Database, action: str, run: str) -> dict[str, int]:
    """Sequence numbers of this run's sealed entries, by resource id."""
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(AuditEntry.resource_id, AuditEntry.seq).where(
            AuditEntry.action == action, AuditEntry.resource_id.like(f"{run}:%")))).all()
    return dict(rows)


async def _unsealed(database: Database, action: str, run: str) -> int:
    async with database.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(AuditPending).where(
            AuditPending.action == action, AuditPending.resource_id.like(f"{run}:%")))).scalar_one()


async def _write(database: Database, action: str, names: list[str]) -> None:
    """One transaction writing one entry per name (unsealed, as every request does in sequencer mode)."""
    async with database.sessionmaker() as session:
        for name in names:
            audit_service.record(session, actor=SYSTEM, action=action, resource_type="test", resource_id=name)
        await session.commit()


class TestCommitOrder:
    @pytest.mark.commits
    async def test_eight_concurrent_writers_are_sealed_in_commit_order(self, settings):
        """Whatever committed before a transaction began is sealed before that transaction's entry, and each writer's
        entries keep their order, while 8 writers commit at once and the sequencer seals alongside."""
        configured = _sequencer_settings(settings)
        database = Database.from_settings(configured)
        run, action = uuid.uuid4().hex[:12], "test.order"
        committed: list[str] = []  # names in the order their commits returned
        seen_before: dict[str, int] = {}  # name -> how many commits had returned when its transaction began
        stop = asyncio.Event()
        sealer = asyncio.create_task(Sequencer(database, configured).run(stop))

        async def writer(w: int) -> None:
            for i in range(25):
                name = f"{run}:{w}:{i:02d}"
                seen_before[name] = len(committed)
                await _write(database, action, [name])
                committed.append(name)

        try:
            await asyncio.gather(*(writer(w) for w in range(8)))
            deadline = time.monotonic() + 60
            while await _unsealed(database, action, run) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await sealer
        try:
            seqs = await _seqs(database, action, run)
            assert sorted(seqs) == sorted(committed)  # every entry sealed, exactly once
            assert await _unsealed(database, action, run) == 0
            for name, before in seen_before.items():
                earlier = committed[:before]
                assert all(seqs[e] < seqs[name] for e in earlier), name
            for w in range(8):
                mine = [seqs[f"{run}:{w}:{i:02d}"] for i in range(25)]
                assert mine == sorted(mine)
            async with database.sessionmaker() as session:
                assert (await audit_service.verify(session)).ok
        finally:
            await database.engine.dispose()


class TestCrashSafety:
    @pytest.mark.commits
    async def test_a_batch_cut_off_before_its_commit_leaves_every_entry_unsealed_for_the_next(self, settings,
                                                                                               is_postgres):
        database = Database.from_settings(_sequencer_settings(settings))
        run, action = uuid.uuid4().hex[:12], "test.cut"
        try:
            # A sealer dies after chaining its batch, before its commit: the connection goes, the transaction with it.
            # On PostgreSQL another connection takes the sealer's lock as it goes, so that no other sequencer (the
            # live server's) can seal the entries before they are counted.
            async with database.engine.connect() as cut, database.engine.connect() as watcher:
                if is_postgres:
                    await cut.begin()
                    await cut.run_sync(lambda c: chain.lock(c, wait=True))
                await _write(database, action, [f"{run}:{i}" for i in range(30)])
                if not is_postgres:
                    await cut.begin()
                assert await cut.run_sync(lambda c: chain.seal(c, limit=100_000)) >= 30
                assert len(await _seqs_on(cut, action, run)) == 30
                if is_postgres:
                    await watcher.begin()
                    waiting = asyncio.create_task(watcher.run_sync(lambda c: chain.lock(c, wait=True)))
                    await asyncio.sleep(0.2)  # let it queue behind the cut-off sealer
                await cut.invalidate()
                if is_postgres:
                    await waiting
                assert await _unsealed_on(watcher, action, run) == 30
                assert await _seqs_on(watcher, action, run) == {}
                await watcher.rollback()
            await Sequencer(database, _sequencer_settings(settings)).drain(wait=True)
            assert len(await _seqs(database, action, run)) == 30
            assert await _unsealed(database, action, run) == 0
            async with database.sessionmaker() as session:
                assert (await audit_service.verify(session)).ok
        finally:
            await database.engine.dispose()

    @pytest.mark.commits
    async def test_no_entry_lost_when_the_worker_is_killed_mid_batch(self, settings, database_url):
        """`rekisteri worker` killed (SIGKILL) while it seals small batches; a second run seals the rest exactly once."""
        database = Database.from_settings(_sequencer_settings(settings))
        run, action, total = uuid.uuid4().hex[:12], "test.kill", 3000
        env = {**os.environ, "REKISTERI_DATABASE_URL": database_url, "REKISTERI_JWT_SECRET": TEST_SECRET,
               "REKISTERI_AUDIT_SEALING": "sequencer", "REKISTERI_AUDIT_SEAL_BATCH_SIZE": "50",
               "REKISTERI_DELIVERY": "console", "REKISTERI_AUDIT_SIGNING_KEY_FILE": str(settings.audit_signing_key_file)}
        cli = str(Path(sys.executable).with_name("rekisteri"))
        try:
            for start in range(0, total, 500):
                await _write(database, action, [f"{run}:{i:05d}" for i in range(start, start + 500)])
            proc = subprocess.Popen([cli, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True)
            try:
                deadline = time.monotonic() + 120
                while not await _seqs(database, action, run) and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            sealed_when_killed = len(await _seqs(database, action, run))
            assert 0 < sealed_when_killed
            done = subprocess.run([cli, "worker", "--once"], env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            seqs = await _seqs(database, action, run)
            assert len(seqs) == total and await _unsealed(database, action, run) == 0
            ordered = [seqs[f"{run}:{i:05d}"] for i in range(total)]
            assert ordered == sorted(ordered)  # written in one order by one writer, sealed in that order
            async with database.sessionmaker() as session:
                assert (await audit_service.verify(session)).ok
        finally:
            await database.engine.dispose()


async def _seqs_on(conn, action: str, run: str) -> dict[str, int]:
    rows = (await conn.execute(select(AuditEntry.resource_id, AuditEntry.seq).where(
        AuditEntry.action == action, AuditEntry.resource_id.like(f"{run}:%")))).all()
    return dict(rows)


async def _unsealed_on(conn, action: str, run: str) -> int:
    return (await conn.execute(select(func.count()).select_from(AuditPending).where(
        AuditPending.action == action, AuditPending.resource_id.like(f"{run}:%")))).scalar_one()


class TestBacklog:
    async def test_verify_reports_the_sealed_head_and_the_unsealed_entries(self, app, client, controller, clock):
        # Seal whatever other tests' apps left unsealed (inside this test's transaction), then write one entry the
        # sequencer's way (unsealed).
        await client.get("/v1/audit/verify", headers=controller.headers)
        async with app.state.db.sessionmaker(info={AUDIT_SEAL_INLINE: False}) as session:
            audit_service.record(session, actor=SYSTEM, action="test.waiting")
            await session.commit()
        clock.advance(timedelta(seconds=5))
        r = await client.get("/v1/audit/verify", headers=controller.headers)
        body = r.json()
        assert body["ok"] is True
        assert body["unsealed"] == 1
        assert body["oldest_unsealed_age_seconds"] >= 5
        # That request sealed at its commit (inline), the waiting entry with its own.
        r = await client.get("/v1/audit/verify", headers=controller.headers)
        body = r.json()
        assert body["unsealed"] == 0 and body["oldest_unsealed_age_seconds"] == 0
        newest = (await client.get("/v1/audit", headers=controller.headers, params={"limit": 3})).json()["items"]
        assert [e["action"] for e in newest] == ["audit.verify", "audit.verify", "test.waiting"]
        # The head the second call reported: the first call's entry, sealed right after the waiting one.
        assert body["sealed_head"] == {"sequence": newest[1]["seq"], "hash": newest[1]["hash"]}
        assert newest[2]["seq"] == newest[1]["seq"] - 1

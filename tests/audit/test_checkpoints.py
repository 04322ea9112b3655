"""Signed checkpoints: made every N entries or T seconds, exported as JSON lines, and `audit-verify --checkpoints`
failing on a rewrite, reordering or truncation whose hashes were all recomputed (which the chain alone accepts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import checkpoints
from app.audit import service as audit_service
from app.audit.chain import CHAINED_FIELDS, entry_hash
from app.audit.models import AuditEntry
from app.auth.principal import SYSTEM
from app.db.session import Database
from tests.audit.tampering import tampering
from tests.conftest import TEST_SECRET

SIGNER = checkpoints.Signer(Ed25519PrivateKey.generate())
ENTRY = AuditEntry.__table__


async def _entries(app, count: int) -> None:
    async with app.state.db.sessionmaker() as session:
        for i in range(count):
            audit_service.record(session, actor=SYSTEM, action="test.entry", details={"i": i})
        await session.commit()


async def _checkpoint(app, clock, *, every: int = 1, interval: float = 10.0) -> int | None:
    async with app.state.db.sessionmaker() as session:
        made = await session.run_sync(lambda s: checkpoints.make_if_due(
            s.connection(), SIGNER, now=clock.utcnow(), every=every, interval=timedelta(seconds=interval)))
        await session.commit()
    return made


async def _exported(app) -> list[checkpoints.Checkpoint]:
    async with app.state.db.sessionmaker() as session:
        lines = await session.run_sync(lambda s: checkpoints.exported(s.connection()))
    return checkpoints.parse_file("\n".join(lines))


async def _rechain_from(conn, first: int) -> None:
    """Recompute every hash from `first` to the head, as someone covering their tracks would."""
    prev = (await conn.execute(select(ENTRY.c.hash).where(ENTRY.c.seq == first - 1))).scalar()
    rows = (await conn.execute(select(ENTRY).where(ENTRY.c.seq >= first).order_by(ENTRY.c.seq))).mappings().all()
    for row in rows:
        entry = {**{name: row[name] for name in CHAINED_FIELDS}, "prev_hash": prev}
        prev = entry_hash(entry)
        await conn.execute(text("UPDATE audit_entry SET prev_hash = :p, hash = :h WHERE seq = :s"),
                           {"p": entry["prev_hash"], "h": prev, "s": row["seq"]})
    await conn.execute(text("UPDATE audit_head SET last_hash = :h WHERE id = 1"), {"h": prev})


async def _tampered(app, is_postgres: bool, statements: list[str], rechain_from: int | None,
                    pinned: list[checkpoints.Checkpoint]):
    """Tamper inside a savepoint with the append-only triggers off, recompute the hashes, verify, roll back."""
    async with tampering(app, is_postgres) as conn:
        for statement in statements:
            await conn.execute(text(statement))
        if rechain_from is not None:
            await _rechain_from(conn, rechain_from)
        session = AsyncSession(bind=conn)
        return await audit_service.verify(session), await audit_service.verify_checkpoints(session, pinned)


class TestCadence:
    async def test_every_n_entries_or_t_seconds_whichever_first(self, app, clock):
        await _entries(app, 1)
        first = await _checkpoint(app, clock, every=3)
        assert first is not None  # the first one is always due
        await _entries(app, 2)
        assert await _checkpoint(app, clock, every=3) is None
        await _entries(app, 1)
        assert await _checkpoint(app, clock, every=3) == first + 3
        await _entries(app, 1)
        assert await _checkpoint(app, clock, every=3, interval=10) is None
        clock.advance(timedelta(seconds=11))
        assert await _checkpoint(app, clock, every=3, interval=10) == first + 4
        clock.advance(timedelta(seconds=11))
        assert await _checkpoint(app, clock, every=3, interval=10) is None  # nothing new to sign


class TestDetection:
    async def _pinned(self, app, clock) -> tuple[list[checkpoints.Checkpoint], int]:
        await _entries(app, 6)
        seq = await _checkpoint(app, clock)
        await _entries(app, 3)
        pinned = [c for c in await _exported(app) if c.seq <= seq]
        return pinned, seq

    async def test_an_intact_chain_matches_its_checkpoints(self, app, clock):
        pinned, seq = await self._pinned(app, clock)
        async with app.state.db.sessionmaker() as session:
            held = await audit_service.verify_checkpoints(session, pinned)
        assert held.ok and held.checked == len(pinned) and held.failed_at is None

    async def test_a_recomputed_rewrite_passes_the_chain_but_not_the_checkpoint(self, app, clock, is_postgres):
        pinned, seq = await self._pinned(app, clock)
        chain, held = await _tampered(app, is_postgres, [
            f"UPDATE audit_entry SET details = '{{\"i\": 99}}' WHERE seq = {seq - 2}"], seq - 2, pinned)
        assert chain.ok  # every hash recomputed: the chain alone cannot tell
        assert not held.ok and held.failed_at == seq and "rewritten" in held.reason

    async def test_a_recomputed_reordering_is_caught(self, app, clock, is_postgres):
        pinned, seq = await self._pinned(app, clock)
        a, b = seq - 3, seq - 2
        chain, held = await _tampered(app, is_postgres, [
            f"UPDATE audit_entry SET seq = -1 WHERE seq = {a}", f"UPDATE audit_entry SET seq = {a} WHERE seq = {b}",
            f"UPDATE audit_entry SET seq = {b} WHERE seq = -1"], a, pinned)
        assert chain.ok
        assert not held.ok and held.failed_at == seq

    async def test_a_truncation_is_caught(self, app, clock, is_postgres):
        pinned, seq = await self._pinned(app, clock)
        keep = seq - 2
        chain, held = await _tampered(app, is_postgres, [
            f"DELETE FROM audit_subject WHERE entry_seq > {keep}", f"DELETE FROM audit_entry WHERE seq > {keep}",
            f"UPDATE audit_head SET last_seq = {keep}, last_hash = (SELECT hash FROM audit_entry WHERE seq = {keep})"],
            None, pinned)
        assert chain.ok
        assert not held.ok and held.failed_at == seq and "truncated" in held.reason

    async def test_a_forged_checkpoint_fails_its_signature(self, app, clock):
        pinned, seq = await self._pinned(app, clock)
        last = pinned[-1]
        forged = checkpoints.Checkpoint(last.seq, "f" * 64, last.at, last.key_id, last.public_key, last.signature)
        async with app.state.db.sessionmaker() as session:
            held = await audit_service.verify_checkpoints(session, [*pinned[:-1], forged])
        assert not held.ok and "signature" in held.reason

    async def test_the_subject_index_is_checked_against_the_entries(self, app, client, controller, is_postgres):
        r = await client.post("/v1/registrants", headers=controller.headers,
                              json={"kind": "person", "given_name": "Aino", "family_name": "Index",
                                    "email": "aino.index@example.com"})
        assert r.status_code == 201, r.text
        chain, _ = await _tampered(app, is_postgres, [
            f"DELETE FROM audit_subject WHERE registrant_id = '{r.json()['id']}'"
            if is_postgres else f"DELETE FROM audit_subject WHERE registrant_id = '{r.json()['id'].replace('-', '')}'"],
            None, [])
        assert not chain.ok


class TestCommands:
    @pytest.mark.commits
    async def test_export_then_verify_against_the_file(self, database_url, settings, tmp_path):
        env = {**os.environ, "REKISTERI_DATABASE_URL": database_url, "REKISTERI_JWT_SECRET": TEST_SECRET,
               "REKISTERI_AUDIT_SIGNING_KEY_FILE": str(settings.audit_signing_key_file),
               "REKISTERI_AUDIT_CHECKPOINT_EVERY": "1", "REKISTERI_DELIVERY": "console"}
        cli = str(Path(sys.executable).with_name("rekisteri"))

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=120)

        database = Database.from_settings(settings)
        try:
            async with database.sessionmaker() as session:  # something to sign, even on a fresh database
                audit_service.record(session, actor=SYSTEM, action="test.signed")
                await session.commit()
        finally:
            await database.engine.dispose()
        assert run("worker", "--once").returncode == 0  # seals and signs the head
        exported = run("audit-checkpoints", "export")
        assert exported.returncode == 0, exported.stderr
        lines = exported.stdout.strip().splitlines()
        assert lines and all(json.loads(line)["signature"] for line in lines)
        kept = tmp_path / "checkpoints.jsonl"
        kept.write_text(exported.stdout)
        done = run("audit-verify", "--checkpoints", str(kept))
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["ok"] and report["checkpoints"]["ok"] and report["checkpoints"]["checked"] >= 1
        last = json.loads(lines[-1])
        kept.write_text(exported.stdout.replace(last["hash"], "0" * 64))
        done = run("audit-verify", "--checkpoints", str(kept))
        assert done.returncode == 1
        assert json.loads(done.stdout.strip().splitlines()[-1])["checkpoints"]["failed_at"] == last["seq"]

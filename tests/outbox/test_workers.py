"""Several workers at once, and a worker killed while it holds claims: every message sent exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.core.config import Settings
from app.db.session import Database
from app.outbox.models import OutboxMessage
from app.outbox.worker import Worker, start_in_process
from tests.outbox.conftest import SmtpSink
from tests.outbox.test_delivery import drain, enqueue, rows

# Workers: several sessions (and processes) at once, so real commits on a database of their own.
pytestmark = pytest.mark.commits


def worker_process(settings: Settings, *args: str) -> subprocess.Popen[str]:
    """`rekisteri worker` in its own process, delivering to the test's SMTP server."""
    env = {**os.environ, "REKISTERI_DATABASE_URL": settings.database_url, "REKISTERI_EMAIL_BACKEND": "smtp",
           "REKISTERI_SMTP_HOST": "127.0.0.1", "REKISTERI_SMTP_PORT": str(settings.smtp_port),
           "REKISTERI_SMTP_STARTTLS": "false", "REKISTERI_SMTP_FROM": "noreply@laulukoulu.example",
           "REKISTERI_OUTBOX_LEASE_SECONDS": "300"}
    rekisteri = Path(sys.executable).with_name("rekisteri")
    return subprocess.Popen([str(rekisteri), "worker", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def statuses(db: Database) -> dict[str, int]:
    """How many messages are in each status."""
    async with db.sessionmaker() as session:
        found = await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
        return dict(found.all())


class TestSeveralWorkers:
    async def test_two_worker_processes_send_each_message_once(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink
    ) -> None:
        ids = await enqueue(db, 240, ref_type="test.concurrent")
        workers = [worker_process(outbox_settings, "--once", "--batch", "15", "--concurrency", "4") for _ in range(2)]
        try:  # generous: a loaded CI machine is slow; no timing is asserted
            outputs = [await asyncio.to_thread(w.communicate, timeout=300) for w in workers]
        finally:
            for w in workers:
                w.kill()
        assert [w.returncode for w in workers] == [0, 0], outputs
        sent_by = [int(out.rsplit("sent ", 1)[1].split(",")[0]) for out, _ in outputs]
        assert sum(sent_by) == 240 and all(n > 0 for n in sent_by), outputs  # both took part
        assert "outbox: batch" in outputs[0][0]  # the progress line
        assert len(smtp.messages) == 240
        assert Counter(smtp.message_ids()) == Counter(f"<{i}@laulukoulu.example>" for i in ids)
        assert {r.status for r in await rows(db, ids)} == {"sent"}

    async def test_two_workers_in_one_process(self, db: Database, outbox_settings: Settings, smtp: SmtpSink) -> None:
        ids = await enqueue(db, 120)
        results = await asyncio.gather(*(drain(db, outbox_settings, batch_size=10, concurrency=3) for _ in range(2)))
        assert sum(r.sent for r in results) == 120
        assert sorted(smtp.message_ids()) == sorted(f"<{i}@laulukoulu.example>" for i in ids)


class TestKilledWorker:
    async def test_claims_of_a_killed_worker_are_sent_after_the_lease(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink, clock: Any
    ) -> None:
        ids = await enqueue(db, 30, ref_type="test.killed")
        smtp.hold_after = 5  # the sixth message waits in DATA: the worker is mid-batch
        proc = worker_process(outbox_settings, "--once", "--batch", "20", "--concurrency", "1")
        try:
            assert await asyncio.to_thread(smtp.holding.wait, 180), "the worker never got going"
            before = await statuses(db)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            smtp.release.set()
        assert before == {"sent": 5, "sending": 15, "pending": 10}
        smtp.hold_after = None
        # Within the lease nobody takes the dead worker's claims ...
        assert (await drain(db, outbox_settings)).claimed == 10
        assert (await statuses(db)) == {"sent": 15, "sending": 15}
        # ... after it, they are claimed again and sent.
        clock.advance(timedelta(seconds=301))
        assert (await drain(db, outbox_settings)).sent == 15
        assert len(smtp.messages) == 30
        assert Counter(smtp.message_ids()) == Counter(f"<{i}@laulukoulu.example>" for i in ids)
        by_id = {r.id: r for r in await rows(db, ids)}
        assert {r.status for r in by_id.values()} == {"sent"}
        assert sorted(r.attempts for r in by_id.values()).count(2) == 15  # the re-claimed ones

    async def test_an_outcome_is_not_recorded_over_another_workers_claim(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink, clock: Any
    ) -> None:
        [message_id] = await enqueue(db)
        slow, fast = Worker(db, outbox_settings), Worker(db, outbox_settings)
        try:
            [claimed] = await slow.claim()
            clock.advance(timedelta(seconds=outbox_settings.outbox_lease_seconds + 1))
            assert (await fast.drain()).sent == 1
            assert await slow.process(claimed) == "lost_lease"  # lease gone: it does not send at all
        finally:
            await slow.aclose()
            await fast.aclose()
        assert len(smtp.messages) == 1
        [row] = await rows(db, [message_id])
        assert (row.status, row.attempts) == ("sent", 2)


def test_worker_cli_once_with_nothing_due(settings: Settings) -> None:
    env = {**os.environ, "REKISTERI_DATABASE_URL": settings.database_url}
    rekisteri = Path(sys.executable).with_name("rekisteri")
    # `--once` exits when nothing is due (the timeout catches one that would wait; no timing is asserted).
    done = subprocess.run([str(rekisteri), "worker", "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "outbox worker done: sent 0" in done.stdout


class TestInProcessWorker:
    async def test_background_task_delivers_until_stopped(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink
    ) -> None:
        background = start_in_process(db, outbox_settings.model_copy(update={"outbox_poll_seconds": 0.05}))
        try:
            ids = await enqueue(db, 4)  # queued while the worker already waits
            for _ in range(200):
                if len(smtp.messages) == 4:
                    break
                await asyncio.sleep(0.02)
        finally:
            stats = await asyncio.wait_for(background.stop(), timeout=10)
        assert stats.sent == 4 and background.task.done()
        assert {r.status for r in await rows(db, ids)} == {"sent"}

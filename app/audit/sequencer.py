"""The audit sequencer: seals written entries into the hash chain off the request path, in batches.

It runs in `rekisteri worker` and, in development, inside the app process (REKISTERI_AUDIT_SEQUENCER_IN_PROCESS).
With REKISTERI_AUDIT_SEALING=inline writers seal their own entries and the sequencer only signs checkpoints
(and seals any entry an earlier sequencer-mode run left).
Several may run at once (every uvicorn worker, several `rekisteri worker`s): a PostgreSQL advisory lock
lets one seal at a time and the others skip their turn. Each batch is one transaction (see
`app.audit.chain`), so killing a sequencer at any moment loses nothing and seals nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Connection

from app.audit import chain, checkpoints
from app.core import clock
from app.core.config import Settings
from app.db.session import Database

log = logging.getLogger("rekisteri.audit")


@dataclass
class Sequencer:
    """Seals the entries of one database and signs checkpoints of its head."""

    database: Database
    settings: Settings
    # By default the key of REKISTERI_AUDIT_SIGNING_KEY_FILE (made once in development).
    signer: checkpoints.Signer = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.signer is None:
            self.signer = checkpoints.load_signer(self.settings.audit_signing_key_file,
                                                  create=self.settings.env == "development")

    async def seal_batch(self, *, wait: bool = False) -> int:
        """Seal one batch, and sign a checkpoint when one is due, in one transaction; the number of entries sealed.
        With `wait` it waits for a sequencer at work to finish its batch instead of skipping its turn."""
        async with self.database.sessionmaker() as session:
            sealed = await session.run_sync(lambda s: self._seal(s.connection(), wait=wait))
            await session.commit()
        return sealed

    def _seal(self, conn: Connection, *, wait: bool) -> int:
        if not chain.lock(conn, wait=wait):
            return 0  # another sequencer is at work
        # With inline sealing the writers seal (and seal anything left unsealed with their own).
        sealed = 0 if self.settings.audit_seals_inline else chain.seal(conn, limit=self.settings.audit_seal_batch_size)
        checkpoints.make_if_due(conn, self.signer, now=clock.utcnow(), every=self.settings.audit_checkpoint_every,
                                interval=timedelta(seconds=self.settings.audit_checkpoint_seconds))
        return sealed

    async def drain(self, *, wait: bool = False) -> int:
        """Seal batches until a batch comes back short (nothing more is sealable now). With `wait`, every entry
        committed before the call is sealed when it returns, even when another sequencer was at work."""
        total = 0
        while True:
            sealed = await self.seal_batch(wait=wait)
            total += sealed
            if sealed < self.settings.audit_seal_batch_size:
                return total

    async def run(self, stop: asyncio.Event) -> int:
        """Drain, wait a poll interval, repeat until `stop`; a failing database is waited out, not fatal."""
        total = 0
        while not stop.is_set():
            try:
                total += await self.drain()
            except Exception:  # noqa: BLE001 - the sequencer outlives a database restart
                log.exception("audit sequencer: batch failed; trying again")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.audit_seal_poll_seconds)
            except TimeoutError:
                pass
        return total


@dataclass
class BackgroundSequencer:
    """A sequencer running as an asyncio task in the app process."""

    task: asyncio.Task[int]
    stop_event: asyncio.Event

    async def stop(self) -> int:
        """Finish the batch in hand and stop."""
        self.stop_event.set()
        return await self.task


def start_in_process(database: Database, settings: Settings) -> BackgroundSequencer:
    """Run the sequencer in this process (development; see REKISTERI_WORKER_IN_PROCESS)."""
    stop = asyncio.Event()
    task = asyncio.create_task(Sequencer(database, settings).run(stop), name="rekisteri-audit-sequencer")
    return BackgroundSequencer(task, stop)

"""The delivery worker: claim due messages under a lease, send outside the claim, record the outcome.

Guarantees, as far as the transports allow:
- never two workers sending one message: a claim is taken in one short transaction
  (PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED; SQLite: the single writer's BEGIN IMMEDIATE),
  and an outcome is written only while the claim is still ours;
- none lost: a worker that dies leaves its claims to expire (`claimed_until`), and any worker
  claims them again after the lease;
- the window left is at-least-once: a worker killed after the transport accepted a message but
  before its `sent` mark committed (marks are group-committed, so this is one commit's worth of
  messages, milliseconds) will have it sent again after the lease. Email carries a
  Message-ID, SMS and webhook requests an `X-Rekisteri-Delivery` id equal to the outbox id, so
  receivers can drop the duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from app.core import clock
from app.core.config import Settings
from app.db.session import Database
from app.outbox import service
from app.outbox.models import Kind, OutboxMessage, Status
from app.outbox.transports import Delivery, DeliveryError, Transports

log = logging.getLogger("rekisteri.outbox")


def backoff_seconds(attempts: int, *, base: float, cap: float) -> float:
    """Delay before the next try: base * 2^(attempts-1), capped, with ±20% jitter so retries spread out."""
    delay = min(base * 2 ** max(attempts - 1, 0), cap)
    return min(delay * random.uniform(0.8, 1.2), cap)


def new_worker_id() -> str:
    """A name unique to this worker instance (host, process, random part)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Stats:
    """What a worker did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    lost_lease: int = 0

    def add(self, other: Stats) -> None:
        """Add another run's counts to these."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Worker:
    """Drains the outbox of one database; several may run at once, in one process or many."""

    database: Database
    settings: Settings
    batch_size: int = 0
    concurrency: int = 0
    worker_id: str = field(default_factory=new_worker_id)
    transports: Transports | None = None
    # Send checks and signing-key resolvers; by default those the composition root (app.wiring) builds.
    hooks: service.OutboxHooks = None  # type: ignore[assignment]
    _sent: list[tuple[uuid.UUID, asyncio.Future[bool]]] = field(default_factory=list, init=False)
    _flusher: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.batch_size = self.batch_size or self.settings.outbox_batch_size
        self.concurrency = self.concurrency or self.settings.outbox_concurrency
        self.transports = self.transports or Transports.from_settings(self.settings, concurrency=self.concurrency)
        if self.hooks is None:
            from app.wiring import build  # noqa: PLC0415 - the root imports every domain, the worker only its hooks

            self.hooks = build(self.settings).outbox

    async def claim(self) -> list[OutboxMessage]:
        """Take up to a batch of due messages (and ones whose lease ran out) in one short transaction."""
        now = clock.utcnow()
        due = or_(
            and_(OutboxMessage.status == Status.pending, OutboxMessage.next_attempt_at <= now),
            and_(OutboxMessage.status == Status.sending, OutboxMessage.claimed_until < now),
        )
        async with self.database.sessionmaker() as session:
            ids = (await session.execute(
                select(OutboxMessage.id).where(due).order_by(OutboxMessage.next_attempt_at)
                .limit(self.batch_size).with_for_update(skip_locked=True)
            )).scalars().all()
            if not ids:
                await session.rollback()
                return []
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                .values(status=Status.sending, claimed_by=self.worker_id,
                        claimed_until=now + timedelta(seconds=self.settings.outbox_lease_seconds),
                        attempts=OutboxMessage.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            messages = (await session.execute(select(OutboxMessage).where(OutboxMessage.id.in_(ids))
                                              .order_by(OutboxMessage.next_attempt_at))).scalars().all()
            await session.commit()
        return list(messages)

    async def run_batch(self) -> Stats:
        """Claim one batch and deliver it, `concurrency` messages at a time."""
        messages = await self.claim()
        stats = Stats(claimed=len(messages))
        slots = asyncio.Semaphore(self.concurrency)

        async def one(message: OutboxMessage) -> None:
            async with slots:
                outcome = await self.process(message)
            setattr(stats, outcome, getattr(stats, outcome) + 1)

        await asyncio.gather(*(one(m) for m in messages))
        return stats

    async def drain(self, *, progress: Callable[[Stats, Stats], None] | None = None) -> Stats:
        """Run batches until nothing is due."""
        total = Stats()
        while True:
            stats = await self.run_batch()
            if not stats.claimed:
                return total
            total.add(stats)
            if progress:
                progress(stats, total)

    async def run(self, stop: asyncio.Event, *, progress: Callable[[Stats, Stats], None] | None = None) -> Stats:
        """Drain, wait for more, repeat until `stop` is set; a failing database is waited out, not fatal."""
        total = Stats()
        while not stop.is_set():
            try:
                total.add(await self.drain(progress=progress))
                await self.transports.idle()
            except Exception:  # noqa: BLE001 - the worker outlives a database restart
                log.exception("outbox worker %s: batch failed; trying again", self.worker_id)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.outbox_poll_seconds)
            except TimeoutError:
                pass
        return total

    async def aclose(self) -> None:
        """Close the transports' connections."""
        await self.transports.aclose()

    async def process(self, message: OutboxMessage) -> str:
        """Check, send and record one claimed message; the name of the Stats counter it adds to."""
        try:
            reason, secret = await self._prepare(message)
        except Exception as exc:  # noqa: BLE001 - a broken check must not lose the message
            log.exception("outbox %s: send check failed", message.id)
            return await self._failed_attempt(message, DeliveryError(f"send check failed ({type(exc).__name__})"))
        if reason:
            done = await self._finish(message, status=Status.failed, last_error=f"cancelled: {reason}"[:500])
            return "cancelled" if done else "lost_lease"
        if message.claimed_until is not None and clock.utcnow() >= message.claimed_until:
            return "lost_lease"  # another worker may hold it now; sending could double it
        try:
            await self.transports.send(Delivery(message.id, message.kind, message.payload, secret))
        except DeliveryError as exc:
            return await self._failed_attempt(message, exc)
        except Exception as exc:  # noqa: BLE001 - unknown transport trouble is worth another try
            log.exception("outbox %s: transport error", message.id)
            return await self._failed_attempt(message, DeliveryError(f"transport error ({type(exc).__name__})"))
        done = await self._mark_sent(message.id)
        if not done:
            log.warning("outbox %s: sent, but the claim had expired; it may be sent twice", message.id)
        return "sent" if done else "lost_lease"

    async def _prepare(self, message: OutboxMessage) -> tuple[str | None, str | None]:
        """Run the send checks and resolve a webhook's key, in one short transaction right before sending."""
        checks = self.hooks.checks_for(message)
        if not checks and message.kind != Kind.webhook:
            return None, None
        async with self.database.sessionmaker() as session:
            for check in checks:
                reason = await check(session, message)
                if reason:
                    return reason, None
            secret = None
            if message.kind == Kind.webhook:
                secret = await self.hooks.resolve_signing_key(session, message.payload["signing_key_ref"])
            await session.rollback()
        return None, secret

    async def _failed_attempt(self, message: OutboxMessage, error: DeliveryError) -> str:
        """Schedule a retry with backoff, or give up when the error is final or the attempts are used."""
        if error.permanent or message.attempts >= message.max_attempts:
            done = await self._finish(message, status=Status.failed, last_error=error.reason)
            return "failed" if done else "lost_lease"
        delay = backoff_seconds(message.attempts, base=self.settings.outbox_backoff_base_seconds,
                                cap=self.settings.outbox_backoff_max_seconds)
        done = await self._finish(message, status=Status.pending, last_error=error.reason,
                                  next_attempt_at=clock.utcnow() + timedelta(seconds=delay))
        return "retried" if done else "lost_lease"

    async def _mark_sent(self, message_id: uuid.UUID) -> bool:
        """Record a send; marks made while another is committing share the next commit (group commit)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._sent.append((message_id, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_sent())
        return await future

    async def _flush_sent(self) -> None:
        """Write queued `sent` marks, one UPDATE per group, until none are left."""
        while self._sent:
            group, self._sent = self._sent, []
            try:
                async with self.database.sessionmaker() as session:
                    marked = set((await session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_([i for i, _ in group]), OutboxMessage.status == Status.sending,
                               OutboxMessage.claimed_by == self.worker_id)
                        .values(status=Status.sent, sent_at=clock.utcnow(), last_error=None, claimed_by=None,
                                claimed_until=None)
                        .returning(OutboxMessage.id).execution_options(synchronize_session=False)
                    )).scalars())
                    await session.commit()
            except Exception as exc:  # noqa: BLE001 - the senders decide; their claims expire and are retried
                for _, future in group:
                    future.set_exception(exc)
                continue
            for message_id, future in group:
                future.set_result(message_id in marked)

    async def _finish(self, message: OutboxMessage, **values: Any) -> bool:
        """Record an outcome only while the claim is still ours; False when another worker took it over."""
        values.update(claimed_by=None, claimed_until=None)
        async with self.database.sessionmaker() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id, OutboxMessage.status == Status.sending,
                       OutboxMessage.claimed_by == self.worker_id)
                .values(**values).execution_options(synchronize_session=False)
            )
            await session.commit()
        return result.rowcount == 1


@dataclass
class BackgroundWorker:
    """A worker running as an asyncio task in the app process."""

    task: asyncio.Task[Stats]
    stop_event: asyncio.Event

    async def stop(self) -> Stats:
        """Finish the current batch and stop."""
        self.stop_event.set()
        return await self.task


def start_in_process(database: Database, settings: Settings,
                     hooks: service.OutboxHooks | None = None) -> BackgroundWorker:
    """Start draining the outbox in this process (the embedded SQLite default; see REKISTERI_WORKER_IN_PROCESS)."""
    stop = asyncio.Event()
    worker = Worker(database, settings, hooks=hooks)

    async def main() -> Stats:
        try:
            return await worker.run(stop)
        finally:
            await worker.aclose()

    return BackgroundWorker(asyncio.create_task(main(), name="rekisteri-outbox-worker"), stop)


def progress_printer(out: Any) -> Callable[[Stats, Stats], None]:
    """A progress callback printing one line per batch with the running rate."""
    started = time.monotonic()

    def show(batch: Stats, total: Stats) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        print(f"outbox: batch {batch.claimed} (sent {batch.sent}, retry {batch.retried}, failed {batch.failed}, "
              f"cancelled {batch.cancelled}) | total sent {total.sent} in {elapsed:.1f}s "
              f"({total.sent / elapsed:.0f}/s)", file=out, flush=True)

    return show


async def run_worker(settings: Settings, *, once: bool = False, batch_size: int = 0, concurrency: int = 0,
                     stop: asyncio.Event | None = None, out: Any = None,
                     hooks: service.OutboxHooks | None = None) -> Stats:
    """Run a worker against the configured database: drain once, or until `stop` (or SIGTERM/SIGINT)."""
    database = Database.from_settings(settings)
    worker = Worker(database, settings, batch_size=batch_size, concurrency=concurrency, hooks=hooks)
    progress = progress_printer(out) if out is not None else None
    try:
        if once:
            return await worker.drain(progress=progress)
        return await worker.run(stop or asyncio.Event(), progress=progress)
    finally:
        await worker.aclose()
        await database.engine.dispose()


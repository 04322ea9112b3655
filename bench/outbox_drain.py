"""Outbox drain benchmark: 5,000 queued emails through the worker to a real local SMTP server (aiosmtpd).

    REKISTERI_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rk_outbox_bench \\
        .venv/bin/python bench/outbox_drain.py [--messages 5000] [--batch 200] [--concurrency 16]

The database is emptied (schema dropped) and migrated first. Target: >= 200 messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.db import migrations  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.outbox import service  # noqa: E402
from app.outbox.models import OutboxMessage  # noqa: E402
from app.outbox.worker import Stats, Worker  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/rk_outbox_bench"
TARGET_PER_SECOND = 200
TEXT = "Hei! Peruutusaika vapautui: ke 14.00–14.45, laulutunti. Poistu listalta: https://laulukoulu.example/poistu"


# The SMTP server runs in its own process, so it does not share the worker's GIL; it prints its count on exit.
SMTP_SERVER = """
import sys, time
from aiosmtpd.controller import Controller

class Counting:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Counting.count += 1
        return "250 OK"

controller = Controller(Counting(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
print(Counting.count, flush=True)
"""


def fresh_database(url: str) -> None:
    """Drop everything (PostgreSQL) or the file (SQLite), then migrate to head."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(parsed.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    elif parsed.database:
        Path(parsed.database).unlink(missing_ok=True)
    migrations.upgrade(url)


def start_smtp() -> tuple[subprocess.Popen, int]:
    """The counting aiosmtpd server in its own process, and its port (stop it with `.communicate(input="")`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    smtp = subprocess.Popen([sys.executable, "-c", SMTP_SERVER, str(port)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert smtp.stdout is not None and smtp.stdout.readline().strip() == "ready"
    return smtp, port


async def timed_drain(database: Database, settings: Settings, *, batch: int, concurrency: int
                      ) -> tuple[Stats, float, int]:
    """Drain everything due with one worker: its stats, the seconds it took, and the rows marked sent."""
    worker = Worker(database, settings, batch_size=batch, concurrency=concurrency)
    started = time.perf_counter()
    stats = await worker.drain()
    elapsed = time.perf_counter() - started
    await worker.aclose()
    async with database.sessionmaker() as session:
        sent = (await session.execute(select(func.count()).where(OutboxMessage.status == "sent"))).scalar_one()
    return stats, elapsed, sent


async def main(args: argparse.Namespace) -> int:
    """Queue, drain, report."""
    url = os.environ.get("REKISTERI_BENCH_DATABASE_URL", DEFAULT_URL)
    await asyncio.to_thread(fresh_database, url)  # alembic runs its own event loop
    smtp, port = start_smtp()
    received = 0
    settings = Settings(database_url=url, jwt_secret="b" * 48, email_backend="smtp", smtp_host="127.0.0.1",
                        smtp_port=port, smtp_starttls=False, smtp_from="noreply@laulukoulu.example")
    database = Database.from_settings(settings)
    try:
        async with database.sessionmaker() as session:
            for n in range(args.messages):
                await service.enqueue(session, kind="email", ref_type="bench", ref_id=n, payload={
                    "to": f"asiakas{n}@example.fi", "subject": "Vapaa aika", "text": TEXT,
                    "headers": {"List-Unsubscribe": f"<https://laulukoulu.example/poistu?t={n}>",
                                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}})
            await session.commit()
        stats, elapsed, sent = await timed_drain(database, settings, batch=args.batch, concurrency=args.concurrency)
    finally:
        await database.engine.dispose()
        received = int(smtp.communicate(input="", timeout=30)[0].strip() or 0)
    rate = stats.sent / elapsed
    print(f"database: {make_url(url).get_backend_name()}, batch {args.batch}, concurrency {args.concurrency}")
    print(f"drained {stats.sent} of {args.messages} emails in {elapsed:.2f}s: {rate:.0f} messages/s "
          f"({rate / TARGET_PER_SECOND:.1f}x the {TARGET_PER_SECOND}/s target); "
          f"SMTP server received {received}, rows marked sent {sent}")
    ok = stats.sent == received == sent == args.messages and rate >= TARGET_PER_SECOND
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    sys.exit(asyncio.run(main(parser.parse_args())))

"""Helpers the benchmarks share: the database, a free port, an account with a token, a running service."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from app.auth.roles import ROLE_SCOPES, Role
from app.core import security
from app.core.config import Settings


def dsn(url: str) -> str:
    """The URL as asyncpg takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def ensure_database(url: str) -> None:
    """Create the benchmark database if it does not exist."""
    parsed = make_url(url)
    admin = await asyncpg.connect(dsn(parsed.set(database="postgres").render_as_string(hide_password=False)))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database):
            await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


async def account_token(conn: asyncpg.Connection, *, url: str, secret: str, role: Role) -> str:
    """A staff account of a role made directly in the database, and a token for it."""
    user_id, now = uuid.uuid4(), datetime.now(UTC)
    await conn.execute(
        "INSERT INTO user_account (id, email, full_name, role, active, password_hash, must_change_password, "
        "token_generation, created_at, updated_at) VALUES ($1, $2, 'Bench', $3, true, '!', false, 1, $4, $4)",
        user_id, f"bench-{user_id.hex[:8]}@example.com", role.value, now)
    settings = Settings(database_url=url, jwt_secret=secret)
    token, _ = security.issue_token(settings, sub=f"user:{user_id}", role=role.value,
                                    scopes=sorted(s.value for s in ROLE_SCOPES[role]), generation=1, ttl_seconds=3600)
    return token


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(url: str, secret: str) -> Iterator[str]:
    """`rekisteri serve` (one worker, no in-process outbox worker) on a free port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "REKISTERI_DATABASE_URL": url, "REKISTERI_JWT_SECRET": secret,
           "REKISTERI_WORKER_IN_PROCESS": "false"}
    server = subprocess.Popen([str(Path(sys.executable).with_name("rekisteri")), "serve", "--port", str(port),
                               "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)

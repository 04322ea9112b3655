"""Helpers the benchmarks share: the database, a free port, an account with a token."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime

import asyncpg
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

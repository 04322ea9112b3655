"""Idempotency-Key handling: a retried POST gets the first response without doing the work again.

The key is claimed with INSERT ... ON CONFLICT DO NOTHING in the request's own transaction,
before the work, and the response is stored in that transaction. A concurrent request with
the same key blocks on the uncommitted row (PostgreSQL) or on the write lock (SQLite) until
the first one commits, and then replays it; if the first one rolled back, it does the work.
The HTTP side (claiming before the handler, storing after it) is `app/idempotency/deps.py`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.errors import Conflict, Invalid
from app.idempotency import repository as repo

# Keys are kept at least this long; older ones may be claimed again (and are purged).
KEY_TTL = timedelta(hours=24)
_LOC = ["header", "Idempotency-Key"]


@dataclass(frozen=True)
class StoredReply:
    """The first response to a key: status, JSON body and the headers worth repeating (e.g. ETag)."""

    status: int
    body: bytes
    headers: dict[str, str]


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request: method, path and its JSON body in canonical form."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


async def claim(session: AsyncSession, *, principal: str, key: str, request_hash: str) -> StoredReply | None:
    """Claim the key for this request (None: do the work), or the reply stored for it (a retry)."""
    if await _claim(session, principal=principal, key=key, request_hash=request_hash):
        return None
    existing = await repo.stored(session, principal=principal, key=key)
    if existing is None or existing.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly",
                       headers={"Retry-After": "1"})
    if existing.request_hash != request_hash:
        raise Invalid("this Idempotency-Key was used with a different request", loc=_LOC)
    return StoredReply(existing.status_code, existing.response_body.encode(), existing.response_headers)


async def store(session: AsyncSession, *, principal: str, key: str, reply: StoredReply) -> None:
    """Keep the reply of a claimed key, in the transaction that did the work."""
    await repo.complete(session, principal=principal, key=key, status_code=reply.status,
                        body=reply.body.decode(), headers=reply.headers)


async def _claim(session: AsyncSession, *, principal: str, key: str, request_hash: str) -> bool:
    now = clock.utcnow()
    if await repo.claim(session, principal=principal, key=key, request_hash=request_hash, now=now):
        return True
    existing = await repo.stored(session, principal=principal, key=key)
    if existing is None or existing.created_at >= now - KEY_TTL:
        return False
    await repo.forget(session, principal=principal, key=key)
    return await repo.claim(session, principal=principal, key=key, request_hash=request_hash, now=now)

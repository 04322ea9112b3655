"""Idempotency-Key handling: a retried POST gets the first response without doing the work again.

The key is claimed with INSERT ... ON CONFLICT DO NOTHING in the request's own transaction,
before the work, and the response is stored in that transaction. A concurrent request with
the same key blocks on the uncommitted row (PostgreSQL) or on the write lock (SQLite) until
the first one commits, and then replays it; if the first one rolled back, it does the work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.errors import Conflict, Invalid
from app.idempotency import repository as repo

# Keys are kept at least this long; older ones may be claimed again (and are purged).
KEY_TTL = timedelta(hours=24)
_LOC = ["header", "Idempotency-Key"]


@dataclass
class Reply:
    """A response as a service result: body, status and headers (e.g. ETag)."""

    body: BaseModel
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request: method, path and its JSON body in canonical form."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def render(reply: Reply) -> Response:
    """The HTTP response of a reply."""
    return Response(reply.body.model_dump_json(), status_code=reply.status, headers=reply.headers,
                     media_type="application/json")


async def run(
    session: AsyncSession, *, principal: str, key: str | None, request_hash: str,
    work: Callable[[], Awaitable[Reply]],
) -> Response:
    """Do `work` once per (principal, key) and answer every retry with the stored response."""
    if key is None:
        return render(await work())
    if not await _claim(session, principal=principal, key=key, request_hash=request_hash):
        return await _replay(session, principal=principal, key=key, request_hash=request_hash)
    reply = await work()
    response = render(reply)
    await repo.complete(session, principal=principal, key=key, status_code=reply.status,
                        body=response.body.decode(), headers=reply.headers)
    return response


async def _claim(session: AsyncSession, *, principal: str, key: str, request_hash: str) -> bool:
    now = clock.utcnow()
    if await repo.claim(session, principal=principal, key=key, request_hash=request_hash, now=now):
        return True
    existing = await repo.stored(session, principal=principal, key=key)
    if existing is None or existing.created_at >= now - KEY_TTL:
        return False
    await repo.forget(session, principal=principal, key=key)
    return await repo.claim(session, principal=principal, key=key, request_hash=request_hash, now=now)


async def _replay(session: AsyncSession, *, principal: str, key: str, request_hash: str) -> Response:
    existing = await repo.stored(session, principal=principal, key=key)
    if existing is None or existing.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly",
                       headers={"Retry-After": "1"})
    if existing.request_hash != request_hash:
        raise Invalid("this Idempotency-Key was used with a different request", loc=_LOC)
    return Response(existing.response_body, status_code=existing.status_code, headers=existing.response_headers,
                    media_type="application/json")


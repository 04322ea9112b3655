"""The Idempotency-Key dependency every POST route takes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import CallerDep
from app.db.session import SessionDep
from app.idempotency import service
from app.idempotency.service import Reply


@dataclass
class Idempotency:
    """The key (if sent) and fingerprint of one POST, bound to its session and caller."""

    session: AsyncSession
    principal: str
    key: str | None
    request_hash: str

    async def run(self, work: Callable[[], Awaitable[Reply]]) -> Response:
        """Do the work once per key; retries get the first response."""
        return await service.run(self.session, principal=self.principal, key=self.key,
                                 request_hash=self.request_hash, work=work)


async def idempotency(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255,
                                      description="Retries with the same key get the first response")] = None,
) -> Idempotency:
    """Read the Idempotency-Key header and fingerprint the request."""
    request_hash = service.fingerprint(request.method, request.url.path, await request.body())
    return Idempotency(session, caller.principal.subject, key, request_hash)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]

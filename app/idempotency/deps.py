"""Idempotency-Key as a dependency: claimed before the handler runs, its reply stored after it.

A POST route opts in with `dependencies=[Idempotent]` on a router whose `route_class` is
`IdempotentRoute`. The dependency claims the key in the request's transaction (a retry is
answered with the stored reply and the handler never runs); the route class keeps the
handler's serialised response with the key before the session dependency commits, so the
work and its reply are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import CallerDep
from app.db.session import SessionDep
from app.idempotency import service
from app.idempotency.service import StoredReply

_ROUTE_MARK = "rekisteri.idempotent_route"
_CLAIM = "rekisteri.idempotency_claim"
# Headers the replay repeats; the rest (length, type, date...) are made afresh.
_REPLAYED_HEADERS = ("etag", "location")


@dataclass(frozen=True)
class _Claim:
    """A key this request holds: its reply is stored in the same session."""

    session: AsyncSession
    principal: str
    key: str


class _Replay(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by the dependency for a retry; the route answers with the stored reply."""

    def __init__(self, reply: StoredReply) -> None:
        super().__init__("idempotent replay")
        self.reply = reply


async def claim_idempotency_key(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255,
                                      description="Retries with the same key get the first response")] = None,
) -> None:
    """Claim the Idempotency-Key before the handler runs; a retry is answered with the first reply."""
    if not request.scope.get(_ROUTE_MARK):
        raise RuntimeError("an Idempotent route needs `route_class=IdempotentRoute` on its router")
    if key is None:
        return
    principal = caller.principal.subject
    request_hash = service.fingerprint(request.method, request.url.path, await request.body())
    stored = await service.claim(session, principal=principal, key=key, request_hash=request_hash)
    if stored is not None:
        raise _Replay(stored)
    request.scope[_CLAIM] = _Claim(session, principal, key)


Idempotent = Depends(claim_idempotency_key)


class IdempotentRoute(APIRoute):
    """A route that answers retries from the stored reply and stores the first one (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        """The handler, wrapped: replay a retry, store a first reply before the session commits."""
        handler = super().get_route_handler()

        async def idempotent_handler(request: Request) -> Response:
            request.scope[_ROUTE_MARK] = True
            try:
                response = await handler(request)
            except _Replay as replay:
                return Response(replay.reply.body, status_code=replay.reply.status, headers=replay.reply.headers,
                                media_type="application/json")
            claim: _Claim | None = request.scope.get(_CLAIM)
            if claim is not None:  # a handler that raised left nothing to store: its transaction rolls back
                headers = {name: response.headers[name] for name in _REPLAYED_HEADERS if name in response.headers}
                await service.store(claim.session, principal=claim.principal, key=claim.key,
                                    reply=StoredReply(response.status_code, bytes(response.body), headers))
            return response

        return idempotent_handler

"""Lean routes: a few hot, simple requests answered before FastAPI's routing and dependency solving.

A lean handler gets the request's scope and answers it only when it can answer exactly as the documented FastAPI
route would: the same checks, the same body and headers, the same audit entry. For anything else (an unknown or
repeated parameter, a cursor, a token whose subject is not in the per-process cache, any error to report) it returns
None before it has done anything, and the request goes on to the route, which stays the one OpenAPI documents and
which answers every error. The middleware guard (request id, client address, access log, metrics) runs around both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import LEAN_ROUTE
from app.core.errors import error_response

LeanHandler = Callable[[Scope, State], Awaitable[Response | None]]
# A handler of a request with a body (the whole of it, as the route would read it); None leaves it to the route,
# which then reads the same body.
LeanBodyHandler = Callable[[Scope, State, bytes], Awaitable[Response | None]]


@dataclass(frozen=True)
class LeanPrefix:
    """Lean handling of the requests of one method under a path prefix (a route with path parameters)."""

    method: str
    prefix: str
    template: str  # the route's template, for the access log and metrics
    handler: LeanBodyHandler


class LeanRoutes:
    """Pure ASGI: hands `(method, path)` requests to their lean handler first, the rest straight to the app."""

    def __init__(self, app: ASGIApp, *, state: State, handlers: dict[tuple[str, str], LeanHandler],
                 prefixes: tuple[LeanPrefix, ...] = ()) -> None:
        self.app = app
        self.state = state  # the app's state, read per request (settings and database may be replaced, as in tests)
        self.handlers = handlers
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if handler is None and scope["type"] == "http":
            for lean in self.prefixes:
                if scope["method"] == lean.method and scope["path"].startswith(lean.prefix):
                    await self._with_body(lean, scope, receive, send)
                    return
        if handler is not None:
            try:
                response = await handler(scope, self.state)
            except Exception as exc:  # after the handler committed to answering: as the route's handlers would
                response = await error_response(Request(scope), exc)
            if response is not None:
                scope[LEAN_ROUTE] = scope["path"]  # the access log's and metrics' route template
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _with_body(self, lean: LeanPrefix, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body (only one whose declared length is within the limit, so reading it cannot fail), offer it
        to the handler, and hand the request to the app with the same body when the handler leaves it."""
        length = first_header(scope, b"content-length")
        if length is None or not length.isdigit() or int(length) > self.state.settings.max_body_bytes:
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        while not received or received[-1].get("more_body", False):
            received.append(await receive())
            if received[-1]["type"] != "http.request":  # the client went away: the app sees it as it would have
                await self.app(scope, _replay(received, receive), send)
                return
        body = b"".join(message.get("body", b"") for message in received)
        try:
            response = await lean.handler(scope, self.state, body)
        except Exception as exc:  # after the handler committed to answering: as the route's handlers would
            response = await error_response(Request(scope), exc)
        if response is None:
            await self.app(scope, _replay(received, receive), send)
            return
        scope[LEAN_ROUTE] = lean.template
        await response(scope, receive, send)


def first_header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (as Starlette's `headers.get`), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _replay(received: list[Message], receive: Receive) -> Receive:
    """`receive` that gives again the messages already read, then what `receive` gives."""
    pending = list(received)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed

"""Lean routes: a few hot, simple requests answered before FastAPI's routing and dependency solving.

A lean handler gets the request's scope and answers it only when it can answer exactly as the documented FastAPI
route would: the same checks, the same body and headers, the same audit entry. For anything else (an unknown or
repeated parameter, a cursor, a token whose subject is not in the per-process cache, any error to report) it returns
None before it has done anything, and the request goes on to the route, which stays the one OpenAPI documents and
which answers every error. The middleware guard (request id, client address, access log, metrics) runs around both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.context import LEAN_ROUTE
from app.core.errors import error_response

LeanHandler = Callable[[Scope, State], Awaitable[Response | None]]


class LeanRoutes:
    """Pure ASGI: hands `(method, path)` requests to their lean handler first, the rest straight to the app."""

    def __init__(self, app: ASGIApp, *, state: State, handlers: dict[tuple[str, str], LeanHandler]) -> None:
        self.app = app
        self.state = state  # the app's state, read per request (settings and database may be replaced, as in tests)
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
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


def first_header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (as Starlette's `headers.get`), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


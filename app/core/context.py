"""Per-request context (request id, client address) without threading it through every call."""

from __future__ import annotations

from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_client_addr: ContextVar[str | None] = ContextVar("client_addr", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return _request_id.get()


def current_client_addr() -> str | None:
    """The address of the caller of the request being served, if any."""
    return _client_addr.get()


def set_request(request_id: str, client_addr: str | None) -> None:
    """Bind the context of a new request."""
    _request_id.set(request_id)
    _client_addr.set(client_addr)

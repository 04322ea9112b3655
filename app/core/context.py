"""Per-request context (request id, client address, principal) without threading it through every call."""

from __future__ import annotations

from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_client_addr: ContextVar[str | None] = ContextVar("client_addr", default=None)
# A mutable holder, so what a dependency learns (the principal) is seen by the middleware that set it up.
_facts: ContextVar[dict[str, Any] | None] = ContextVar("request_facts", default=None)
# Scope key: the route template of a request a lean route answered (app/core/lean.py).
LEAN_ROUTE = "rekisteri.lean_route"


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return _request_id.get()


def current_client_addr() -> str | None:
    """The address of the caller of the request being served, if any."""
    return _client_addr.get()


def set_request(request_id: str, client_addr: str | None) -> dict[str, Any]:
    """Bind the context of a new request; returns the holder the request's facts are gathered in."""
    _request_id.set(request_id)
    _client_addr.set(client_addr)
    facts: dict[str, Any] = {}
    _facts.set(facts)
    return facts


def set_principal_id(principal_id: str | None) -> None:
    """Note who the request's caller is, for the access log."""
    facts = _facts.get()
    if facts is not None:
        facts["principal"] = principal_id


def route_template(scope: MutableMapping[str, Any]) -> str:
    """`/v1/registrants/{registrant_id}` for the request's route, `<unmatched>` when none matched."""
    if LEAN_ROUTE in scope:
        return scope[LEAN_ROUTE]
    # FastAPI records the full template of the route it chose (prefixes included) in its scope entry.
    chosen = (scope.get("fastapi") or {}).get("effective_route_context")
    if isinstance(getattr(chosen, "path", None), str) and chosen.path:
        return chosen.path
    if scope.get("route") is None:
        return "<unmatched>"
    # Elsewhere: the path with every path parameter's value put back as its {name}.
    names = {str(value).lower(): f"{{{name}}}" for name, value in (scope.get("path_params") or {}).items()}
    return "/".join(names.get(part.lower(), part) for part in scope["path"].split("/"))

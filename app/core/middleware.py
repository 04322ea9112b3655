"""Pure ASGI middleware: request ids, client address, body size and content-type limits, access log, metrics."""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import route_template, set_request
from app.core.errors import problem_response, unexpected_response
from app.core.metrics import observe_request

log = logging.getLogger("rekisteri.access")

BODY_METHODS = {b"POST", b"PUT", b"PATCH"}
FORM_PATHS = {"/v1/auth/token"}
# RFC 8058 one-click unsubscribe: mail clients POST `List-Unsubscribe=One-Click` as a form to the link.
FORM_OR_JSON_PATHS = {"/v1/waitlist/unsubscribe", "/v1/optout"}
_SAFE_REQUEST_ID = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class _TooLarge(StarletteHTTPException):
    """Raised from inside the app while reading a body, so its own handler renders the 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class RequestGuard:
    """Tags each request with an id, refuses oversized bodies (413) and wrong content types (415)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, trusted_proxies: list[str] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.proxies = TrustedProxies(trusted_proxies or [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = _request_id(headers.get(b"x-request-id"))
        client = scope.get("client")
        facts = set_request(request_id, self.proxies.client_address(client[0] if client else None,
                                                                    headers.get(b"x-forwarded-for")))
        started = time.perf_counter()
        status_holder: dict[str, Any] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode()), *_hardening(
                    message["headers"])]
            await send(message)

        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send_with_id)
        else:
            try:
                await self.app(scope, self._limited(receive), send_with_id)
            except Exception as exc:
                # Answer here rather than in Starlette's outermost layer, which re-raises after its 500 and so
                # makes uvicorn drop the keep-alive connection; once the response has started nothing can.
                if "status" in status_holder:
                    raise
                await unexpected_response(route_template(scope), exc)(scope, receive, send_with_id)
        seconds = time.perf_counter() - started
        # The route template, never the path: paths and query strings may carry personal data (e.g. ?email=).
        route = route_template(scope)
        status = status_holder.get("status", 500)
        observe_request(method=scope["method"], route=route, status=status, seconds=seconds)
        log.info("%s %s %s %.1fms", scope["method"], route, status, seconds * 1000,
                 extra={"method": scope["method"], "route": route, "status": status,
                        "duration_ms": round(seconds * 1000, 1), "principal": facts.get("principal")})

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> Any:
        if scope["method"].encode() not in BODY_METHODS:
            return None
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large()
        has_body = length is None and b"transfer-encoding" in headers or (length not in (None, b"0"))
        if not has_body:
            return None
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope["path"] in FORM_OR_JSON_PATHS and ctype in (b"application/x-www-form-urlencoded", b"application/json"):
            return None
        wanted = b"application/x-www-form-urlencoded" if scope["path"] in FORM_PATHS else b"application/json"
        if ctype != wanted and not (wanted == b"application/json" and ctype.endswith(b"+json")):
            return problem_response(415, slug="unsupported-media-type", title="Unsupported media type",
                                    detail=f"send the body as {wanted.decode()}")
        return None

    def _too_large(self) -> Any:
        return problem_response(413, slug="payload-too-large", title="Payload too large",
                                detail=f"the request body exceeds {self.max_body_bytes} bytes")

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise _TooLarge(self.max_body_bytes)
            return message

        return wrapped


class TrustedProxies:
    """Whose `X-Forwarded-For` is believed (REKISTERI_TRUSTED_PROXIES; as uvicorn's --forwarded-allow-ips)."""

    def __init__(self, entries: list[str]) -> None:
        self.everyone = "*" in entries
        self.networks = [ipaddress.ip_network(e, strict=False) for e in entries if e != "*"]

    def trusts(self, address: str | None) -> bool:
        """Whether a hop is one of our proxies."""
        if address is None:
            return False
        if self.everyone:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_address(self, peer: str | None, forwarded_for: bytes | None) -> str | None:
        """The peer, or, when the peer is a trusted proxy, the nearest untrusted `X-Forwarded-For` hop.

        Walking from the right skips only hops we trust, so a client cannot pick its address by sending
        its own header; with every hop trusted this is the first one.
        """
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer


def _request_id(given: bytes | None) -> str:
    if given and len(given) <= 64:
        text = given.decode("ascii", "ignore")
        if text and set(text) <= _SAFE_REQUEST_ID:
            return text
    return uuid.uuid4().hex


def _hardening(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers every response carries unless it set its own: no cache (shared or browser) keeps a response, as most
    carry personal data (GDPR Art. 32), and browsers take the declared content type as it is."""
    present = {name.lower() for name, _ in headers}
    return [(name, value) for name, value in _HARDENING if name not in present]


_HARDENING = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))

"""Pure ASGI middleware: request ids, body size and content-type limits, access log."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import set_request
from app.core.errors import problem_response, unexpected_response

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

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = _request_id(headers.get(b"x-request-id"))
        client = scope.get("client")
        set_request(request_id, client[0] if client else None)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
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
                await unexpected_response(scope["path"], exc)(scope, receive, send_with_id)
        # Path and status only: query strings may carry personal data (e.g. ?email=).
        log.info("%s %s %s %.1fms rid=%s", scope["method"], scope["path"], status_holder.get("status"),
                 (time.perf_counter() - started) * 1000, request_id)

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


def _request_id(given: bytes | None) -> str:
    if given and len(given) <= 64:
        text = given.decode("ascii", "ignore")
        if text and set(text) <= _SAFE_REQUEST_ID:
            return text
    return uuid.uuid4().hex

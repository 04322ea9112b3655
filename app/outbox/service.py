"""Queueing deliveries in the caller's transaction, and the hooks features plug into the worker."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock
from app.core.config import get_settings
from app.core.errors import Invalid
from app.outbox.models import Kind, OutboxMessage, Status

log = logging.getLogger("rekisteri.outbox")

SendCheck = Callable[[AsyncSession, OutboxMessage], Awaitable[str | None]]
KeyResolver = Callable[[AsyncSession, str], Awaitable[str | None]]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# Set by the email transport itself; a payload may not override who or what the message is.
_RESERVED_HEADERS = {"from", "to", "cc", "bcc", "subject", "message-id", "date", "sender", "reply-to",
                     "content-type", "content-transfer-encoding", "mime-version"}

@dataclass
class OutboxHooks:
    """What features plug into the worker: send checks and signing-key resolvers (filled by `app.wiring`)."""

    send_checks: dict[str, list[SendCheck]] = field(default_factory=dict)
    key_resolvers: dict[str, KeyResolver] = field(default_factory=dict)

    def add_send_check(self, key: str, check: SendCheck) -> None:
        """Run `check` before sending every message of a kind (`email`, `sms`, `webhook`) or a `ref_type`.

        The check returns a reason to cancel (the message then becomes `failed` with it, unsent),
        or None to let it go. It runs in its own read transaction just before the send.
        """
        checks = self.send_checks.setdefault(key, [])
        if check not in checks:
            checks.append(check)

    def checks_for(self, message: OutboxMessage) -> list[SendCheck]:
        """The checks that apply to a message: those of its kind, then those of its ref_type."""
        checks = list(self.send_checks.get(message.kind, []))
        if message.ref_type:
            checks += self.send_checks.get(message.ref_type, [])
        return checks

    def add_key_resolver(self, prefix: str, resolver: KeyResolver) -> None:
        """Resolve webhook `signing_key_ref`s of the form `<prefix>:<rest>` to their secret at send time."""
        self.key_resolvers[prefix] = resolver

    async def resolve_signing_key(self, session: AsyncSession, ref: str) -> str | None:
        """The secret a `signing_key_ref` names, or None when no resolver knows it."""
        prefix, _, rest = ref.partition(":")
        resolver = self.key_resolvers.get(prefix)
        return await resolver(session, rest) if resolver and rest else None


async def enqueue(
    session: AsyncSession,
    *,
    kind: Kind | str,
    payload: dict[str, Any],
    ref_type: str | None = None,
    ref_id: object | None = None,
    registrant_id: uuid.UUID | None = None,
    max_attempts: int | None = None,
    not_before: datetime | None = None,
) -> OutboxMessage:
    """Queue one delivery in the caller's transaction: it is sent only if that transaction commits."""
    kind = Kind(kind)
    _VALIDATORS[kind](payload)
    message = OutboxMessage(
        kind=kind.value,
        payload=payload,
        status=Status.pending.value,
        attempts=0,
        max_attempts=max_attempts or get_settings().outbox_max_attempts,
        next_attempt_at=not_before or clock.utcnow(),
        ref_type=ref_type,
        ref_id=str(ref_id) if ref_id is not None else None,
        registrant_id=registrant_id,
        created_at=clock.utcnow(),
    )
    session.add(message)
    await session.flush()
    return message


def _require_text(payload: dict[str, Any], name: str, *, max_length: int) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{name} is required", loc=["payload", name])
    if len(value) > max_length:
        raise Invalid(f"{name} is longer than {max_length} characters", loc=["payload", name])
    return value


def _no_line_breaks(payload: dict[str, Any], name: str) -> None:
    # A CR or LF in a header value would let the payload add headers of its own.
    if any(c in payload[name] for c in "\r\n"):
        raise Invalid(f"{name} may not contain line breaks", loc=["payload", name])


def _validate_email(payload: dict[str, Any]) -> None:
    _require_text(payload, "to", max_length=320)
    _require_text(payload, "subject", max_length=300)
    _require_text(payload, "text", max_length=200_000)
    _no_line_breaks(payload, "to")
    _no_line_breaks(payload, "subject")
    if "@" not in payload["to"]:
        raise Invalid("to must be an email address", loc=["payload", "to"])
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict):
        raise Invalid("headers must be an object", loc=["payload", "headers"])
    for name, value in headers.items():
        if not _HEADER_NAME.match(name) or name.lower() in _RESERVED_HEADERS:
            raise Invalid(f"header {name!r} may not be set", loc=["payload", "headers", name])
        if not isinstance(value, str) or any(c in value for c in "\r\n"):
            raise Invalid(f"header {name!r} must be one line of text", loc=["payload", "headers", name])


def _validate_sms(payload: dict[str, Any]) -> None:
    if not E164.match(str(payload.get("to", ""))):
        raise Invalid("to must be a phone number in E.164 form (+358...)", loc=["payload", "to"])
    _require_text(payload, "text", max_length=1600)


def _validate_webhook(payload: dict[str, Any]) -> None:
    _require_text(payload, "url", max_length=2000)
    if not isinstance(payload.get("body"), dict):
        raise Invalid("body must be a JSON object", loc=["payload", "body"])
    ref = _require_text(payload, "signing_key_ref", max_length=200)
    if ":" not in ref:
        raise Invalid("signing_key_ref must look like `<prefix>:<id>`", loc=["payload", "signing_key_ref"])


_VALIDATORS: dict[Kind, Callable[[dict[str, Any]], None]] = {
    Kind.email: _validate_email,
    Kind.sms: _validate_sms,
    Kind.webhook: _validate_webhook,
}

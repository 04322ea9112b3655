"""GDPR Art. 19: tell every recipient of a registrant's data about a rectification, erasure or restriction.

Each notice is a signed webhook through the outbox, retried until the recipient acknowledges it (2xx).
Integrations are told with their own external references; recipients of the register profile with a
callback URL get the registrant's id. Notices say which fields changed, never their new values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiClient
from app.core import clock
from app.core.config import Settings
from app.outbox.models import Kind as MessageKind
from app.outbox.models import OutboxMessage
from app.outbox.models import Status as MessageStatus
from app.outbox.service import KeyResolver, enqueue
from app.register import service as register
from app.registrants.models import RegistrantRef

Event = Literal["rectified", "erased", "restricted", "restriction_lifted"]
# Art. 19 asks that recipients be told; a recipient down for days still gets the notice.
MAX_ATTEMPTS = 40
REF_TYPE = "art19"


@dataclass(frozen=True)
class Notified:
    """One recipient told about a change, and the outbox message carrying the notice."""

    recipient: str
    kind: Literal["integration", "profile_recipient"]
    message_id: uuid.UUID


async def references_by_system(session: AsyncSession, *, registrant_id: uuid.UUID) -> dict[str, list[str]]:
    """The registrant's external ids per system (read them before an erasure hashes them)."""
    rows = await session.execute(select(RegistrantRef.system, RegistrantRef.external_id)
                                 .where(RegistrantRef.registrant_id == registrant_id))
    refs: dict[str, list[str]] = {}
    for system, external_id in rows:
        refs.setdefault(system, []).append(external_id)
    return refs


async def notify(
    session: AsyncSession,
    *,
    registrant_id: uuid.UUID,
    event: Event,
    fields: list[str],
    refs: dict[str, list[str]],
    request_id: uuid.UUID | None,
) -> list[Notified]:
    """Queue a signed notice for every integration holding a reference and every profile recipient with a URL."""
    body = {"type": f"registrant.{event}", "registrant_id": str(registrant_id), "fields": sorted(fields),
            "request_id": str(request_id) if request_id else None, "occurred_at": clock.utcnow().isoformat()}
    notified: list[Notified] = []
    if refs:
        clients = (await session.execute(select(ApiClient).where(
            ApiClient.system.in_(sorted(refs)), ApiClient.role == "integration", ApiClient.revoked_at.is_(None),
            ApiClient.callback_url.is_not(None)))).scalars()
        for client in clients:
            payload = {**body, "system": client.system, "external_ids": refs[client.system]}
            message = await enqueue(session, kind=MessageKind.webhook, ref_type=REF_TYPE, ref_id=str(request_id or registrant_id),
                                    registrant_id=registrant_id, max_attempts=MAX_ATTEMPTS,
                                    payload={"url": client.callback_url, "body": payload,
                                             "signing_key_ref": f"client:{client.id}"})
            notified.append(Notified(recipient=f"{client.name} ({client.system})", kind="integration",
                                     message_id=message.id))
    profile = await register.current_profile(session)
    for recipient in profile.recipients if profile else []:
        if recipient.callback_url:
            message = await enqueue(session, kind=MessageKind.webhook, ref_type=REF_TYPE, ref_id=str(request_id or registrant_id),
                                    registrant_id=registrant_id, max_attempts=MAX_ATTEMPTS,
                                    payload={"url": recipient.callback_url, "body": body,
                                             "signing_key_ref": "recipient:profile"})
            notified.append(Notified(recipient=recipient.name, kind="profile_recipient", message_id=message.id))
    return notified


def as_outcome(told: list[Notified]) -> list[dict[str, str]]:
    """Notices as stored in a request's outcome (the answer to the person can list the recipients)."""
    return [{"recipient": t.recipient, "kind": t.kind, "message_id": str(t.message_id)} for t in told]


async def acknowledgements(session: AsyncSession, *, notices: list[dict[str, str]]) -> list[dict[str, object]]:
    """Each stored notice with whether its recipient acknowledged it (the outbox delivered it with a 2xx)."""
    if not notices:
        return []
    ids = [uuid.UUID(n["message_id"]) for n in notices]
    rows = await session.execute(select(OutboxMessage.id, OutboxMessage.status).where(OutboxMessage.id.in_(ids)))
    status = {row.id: row.status for row in rows}
    return [{"recipient": n["recipient"], "kind": n["kind"], "status": status.get(uuid.UUID(n["message_id"]), "unknown"),
             "acknowledged": status.get(uuid.UUID(n["message_id"])) == MessageStatus.sent} for n in notices]


def key_resolver(settings: Settings) -> KeyResolver:
    """How the outbox signs notices to profile recipients (their key comes from the settings)."""
    secret = settings.recipient_signing_secret

    async def resolve(_session: AsyncSession, _ref: str) -> str | None:
        return secret.get_secret_value() if secret else None

    return resolve

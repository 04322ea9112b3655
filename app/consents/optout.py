"""One-click opt-out tokens: one per registrant, purpose, channel and consent generation, checked by HMAC.

A token names the registrant and the ledger event that decided the state when the row was listed (its
"generation"), and carries an HMAC over those with the purpose and channel, so a token used with another
purpose or channel fails like an unknown one. Nothing is stored until a token is used; then its SHA-256 is kept
(`optout_use`), so each token works once and a used one answers like an unknown one (404).
Headers for mail: RFC 2369 `List-Unsubscribe` and RFC 8058 `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

ONE_CLICK = "List-Unsubscribe=One-Click"
_NO_EVENT = uuid.UUID(int=0)
_TAG_BYTES = 16


@dataclass(frozen=True, slots=True)
class Claim:
    """What a valid token says."""

    registrant_id: uuid.UUID
    generation: uuid.UUID


def _tag(key: bytes, registrant_id: uuid.UUID, generation: uuid.UUID, purpose: str, channel: str) -> bytes:
    message = b"|".join([registrant_id.bytes, generation.bytes, purpose.encode(), channel.encode()])
    return hmac.digest(key, message, "sha256")[:_TAG_BYTES]


def make_token(key: bytes, *, registrant_id: uuid.UUID, generation: uuid.UUID | None, purpose: str,
               channel: str) -> str:
    """The token of one registrant, purpose and channel at one generation of its consent state."""
    gen = generation or _NO_EVENT
    raw = registrant_id.bytes + gen.bytes + _tag(key, registrant_id, gen, purpose, channel)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_token(key: bytes, token: str, *, purpose: str, channel: str) -> Claim | None:
    """The claim of a token made for this purpose and channel; None for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 32 + _TAG_BYTES:
        return None
    registrant_id, generation = uuid.UUID(bytes=raw[:16]), uuid.UUID(bytes=raw[16:32])
    if not hmac.compare_digest(raw[32:], _tag(key, registrant_id, generation, purpose, channel)):
        return None
    return Claim(registrant_id=registrant_id, generation=generation)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) a used token is kept as."""
    return hashlib.sha256(token.encode()).hexdigest()


def optout_link(base_url: str, *, purpose: str, channel: str) -> str:
    """The opt-out link of a purpose and channel up to its token: append a token to get a person's link.

    GET on the link shows a confirmation page, POST opts out. Tokens are base64url, safe in a query as they are.
    """
    query = urlencode({"purpose": purpose, "channel": channel})
    return f"{base_url.rstrip('/')}/v1/optout?{query}&token="


def list_unsubscribe(url: str) -> str:
    """The RFC 2369 `List-Unsubscribe` header value for the link (one https URI in angle brackets)."""
    return f"<{url}>"

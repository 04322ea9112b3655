"""Audit log responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.core.schemas import ResponseModel


class AuditEntryRead(ResponseModel):
    """One entry of the log, with its place in the chain."""

    seq: int
    id: uuid.UUID
    at: datetime
    actor_type: str
    actor_id: str | None
    actor_name: str | None
    role: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    registrant_ids: list[str]
    request_id: str | None
    client_addr: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class VerificationRead(ResponseModel):
    """Whether the chain is intact; `first_broken` is the sequence number of the first bad entry."""

    ok: bool
    entries: int
    first_broken: int | None

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


class SealedHead(ResponseModel):
    """The last entry sealed into the chain (sequence 0 and the genesis hash when none is)."""

    sequence: int
    hash: str


class VerificationRead(ResponseModel):
    """Whether the sealed chain is intact (`first_broken`: the sequence number of the first bad entry), its head,
    and the entries written but not yet sealed by the sequencer."""

    ok: bool
    entries: int
    first_broken: int | None
    sealed_head: SealedHead
    unsealed: int
    oldest_unsealed_age_seconds: float

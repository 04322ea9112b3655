"""Endpoints: /v1/audit (the log and its verification)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.core.types import Instant, Line
from app.audit import repository as repo
from app.audit import service
from app.audit.schemas import AuditEntryRead, VerificationRead
from app.auth.deps import AuditReader
from app.core.errors import problem_responses
from app.db.pagination import Page, PageDep
from app.db.session import SessionDep

router = APIRouter(prefix="/audit", tags=["audit"], responses=problem_responses(401, 403))


@router.get("", status_code=200, response_model=Page[AuditEntryRead], responses=problem_responses(422))
async def list_audit(
    actor: AuditReader,
    session: SessionDep,
    page: PageDep,
    registrant: Annotated[uuid.UUID | None, Query(description="Entries concerning this registrant")] = None,
    actor_id: Annotated[Line | None, Query(max_length=64, description="Account or client id")] = None,
    action: Annotated[Line | None, Query(max_length=64)] = None,
    request_id: Annotated[Line | None, Query(max_length=64, description="Entries of one request (X-Request-Id)")] = None,
    since: Annotated[Instant | None, Query(alias="from", description="Inclusive lower bound (RFC 3339)")] = None,
    until: Annotated[Instant | None, Query(alias="to", description="Exclusive upper bound (RFC 3339)")] = None,
) -> Page[AuditEntryRead]:
    """List audit entries, newest first."""
    filters = repo.AuditFilter(registrant_id=registrant, actor_id=actor_id, action=action,
                              request_id=request_id, since=since, until=until)
    return await service.list_entries(session, actor=actor, filters=filters, params=page)


@router.get("/verify", status_code=200, response_model=VerificationRead)
async def verify_audit(actor: AuditReader, session: SessionDep) -> VerificationRead:
    """Recompute the hash chain, report the first broken entry, if any, and how far sealing lags behind."""
    return await service.verification_report(session, actor=actor)

"""Endpoints: the ledger under /v1/registrants/{id}/consents, receipts, /v1/audience and consent stats."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.core.csvcells import csv_text
from app.core.types import Line
from app.auth.deps import SettingsDep, require
from app.auth.principal import Principal
from app.auth.roles import Scope
from app.consents import service
from app.consents.schemas import (
    AudienceMember,
    ConsentEventCreate,
    ConsentEventWithReceipt,
    ConsentReceipt,
    ConsentStateRead,
    ConsentStats,
)
from app.core.config import Settings
from app.core.errors import problem_responses
from app.db.pagination import CursorQuery, Page, PageParams, read_params
from app.db.session import SessionDep
from app.idempotency.deps import Idempotent, IdempotentRoute
from app.register.schemas import Channel

router = APIRouter(tags=["consents"], responses=problem_responses(401, 403), route_class=IdempotentRoute)

ConsentsRead = Annotated[Principal, Depends(require(Scope.consents_read))]
ConsentsWrite = Annotated[Principal, Depends(require(Scope.consents_write))]
StatsRead = Annotated[Principal, Depends(require(Scope.stats_read))]
AUDIENCE_LIMIT_MAX = 5000


def _policy_url(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + "/v1/register/statement"


def audience_page(
    limit: Annotated[int, Query(ge=1, le=AUDIENCE_LIMIT_MAX, description="People per page")] = 1000,
    cursor: CursorQuery = None,
) -> PageParams:
    """Audience pages are larger than other lists: they feed mailing tools."""
    return read_params(limit, cursor, default=limit, cap=AUDIENCE_LIMIT_MAX)


@router.post("/registrants/{registrant_id}/consents", status_code=201, response_model=ConsentEventWithReceipt,
             dependencies=[Idempotent], responses=problem_responses(404, 422))
async def record_consent(registrant_id: uuid.UUID, body: ConsentEventCreate, actor: ConsentsWrite,
                         session: SessionDep, settings: SettingsDep) -> ConsentEventWithReceipt:
    """Record a grant, withdrawal or objection; the answer carries a Kantara consent receipt."""
    return await service.record_event(session, actor=actor, registrant_id=registrant_id, data=body,
                                      policy_url=_policy_url(settings))


@router.get("/registrants/{registrant_id}/consents", status_code=200, response_model=ConsentStateRead,
            responses=problem_responses(404, 422))
async def consent_state(registrant_id: uuid.UUID, actor: ConsentsRead, session: SessionDep,
                        history: Annotated[bool, Query(description="Include the whole ledger")] = False,
                        ) -> ConsentStateRead:
    """The current state per purpose and channel, derived from the ledger."""
    return await service.current_state(session, actor=actor, registrant_id=registrant_id, history=history)


@router.get("/consents/{event_id}/receipt", status_code=200, response_model=ConsentReceipt,
            responses=problem_responses(404, 422))
async def consent_receipt(event_id: uuid.UUID, actor: ConsentsRead, session: SessionDep,
                          settings: SettingsDep) -> ConsentReceipt:
    """The consent receipt of one ledger event, again."""
    return await service.receipt(session, actor=actor, event_id=event_id, policy_url=_policy_url(settings))


@router.get("/audience", status_code=200, response_model=Page[AudienceMember],
            responses={**problem_responses(422), 200: {"content": {"text/csv": {}}}})
async def audience(
    request: Request,
    actor: ConsentsRead,
    session: SessionDep,
    page: Annotated[PageParams, Depends(audience_page)],
    purpose: Annotated[Line, Query(max_length=64, description="A purpose code of the register profile")],
    channel: Annotated[Channel, Query(description="The channel to contact them on")],
    format: Annotated[Literal["json", "csv"], Query(description="`csv`: the same page as CSV")] = "json",
) -> Page[AudienceMember] | Response:
    """Who may be contacted for a purpose on a channel right now, with only that channel's contact."""
    result = await service.audience(session, actor=actor, purpose_code=purpose, channel=channel.value, params=page)
    if format == "json":
        return result
    document = csv_text(["registrant_id", "language", "email", "phone"],
                        ([m.registrant_id, m.language, m.email, m.phone] for m in result.items))
    headers = {}
    if result.next_cursor:
        headers["X-Next-Cursor"] = result.next_cursor
        headers["Link"] = f'<{request.url.include_query_params(cursor=result.next_cursor)}>; rel="next"'
    return Response(document, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/stats/consents", status_code=200, response_model=ConsentStats)
async def consent_stats(actor: StatsRead, session: SessionDep) -> ConsentStats:
    """How many registrants stand where per purpose, channel and state; counts only."""
    return await service.stats(session)

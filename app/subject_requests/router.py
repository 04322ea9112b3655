"""Endpoints: /v1/requests (data-subject requests, transitions, the package) and /v1/stats/requests."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from fastapi.responses import HTMLResponse

from app.core.types import Instant
from app.auth.deps import SettingsDep
from app.core.errors import Invalid, problem_responses
from app.db.pagination import Page, PageDep
from app.db.session import SessionDep
from app.idempotency.deps import Idempotent, IdempotentRoute
from app.register.schemas import RequestChannel
from app.subject_requests import service
from app.subject_requests.auth import ExportsReader, RequestsReader, RequestsWriter, StatsReader
from app.subject_requests.repository import RequestFilter
from app.subject_requests.texts import CONFIRM_PAGE
from app.wiring import WiringDep
from app.subject_requests.schemas import (
    ConfirmationRead,
    RequestCreate,
    RequestCreated,
    RequestDetail,
    RequestRead,
    RequestStats,
    RequestStatus,
    RequestType,
    Transition,
)

router = APIRouter(prefix="/requests", tags=["requests"], responses=problem_responses(401, 403),
                   route_class=IdempotentRoute)
stats_router = APIRouter(prefix="/stats", tags=["stats"], responses=problem_responses(401, 403))

RequestId = Annotated[uuid.UUID, Path(description="The request's id")]


async def request_filter(
    status: Annotated[list[RequestStatus] | None, Query(description="Any of these statuses")] = None,
    type: Annotated[list[RequestType] | None, Query(description="Any of these types")] = None,  # noqa: A002
    registrant_id: Annotated[uuid.UUID | None, Query()] = None,
    overdue: Annotated[bool | None, Query(description="Open and past the deadline (or not)")] = None,
    due_before: Annotated[Instant | None, Query(description="Exclusive (RFC 3339)")] = None,
    channel: Annotated[RequestChannel | None, Query()] = None,
) -> RequestFilter:
    """The list filters."""
    if due_before is not None and due_before.tzinfo is None:
        raise Invalid("a time needs its UTC offset (RFC 3339)", loc=["query", "due_before"])
    return RequestFilter(statuses=tuple(s.value for s in status or ()), types=tuple(t.value for t in type or ()),
                         registrant_id=registrant_id, overdue=overdue, due_before=due_before,
                         channel=channel.value if channel else None)


FilterDep = Annotated[RequestFilter, Depends(request_filter)]


@router.post("", status_code=201, response_model=RequestCreated, dependencies=[Idempotent],
             responses=problem_responses(404, 409, 415, 422))
async def file_request(body: RequestCreate, actor: RequestsWriter, session: SessionDep,
                       settings: SettingsDep) -> RequestCreated:
    """File a data-subject request; the callback secret is shown in this answer only."""
    return await service.file_request(session, actor=actor, data=body, allowlist=settings.callback_allowlist)


Token = Annotated[str, Path(min_length=20, max_length=128, description="The token of the confirmation link")]


@router.get("/confirmations/{token}", status_code=200, response_class=HTMLResponse,
            responses=problem_responses(422), openapi_extra={"security": []})
async def confirmation_page(token: Token) -> HTMLResponse:
    """The page the link opens: one button that confirms (a GET never does: link scanners follow links)."""
    return HTMLResponse(CONFIRM_PAGE)


@router.post("/confirmations/{token}", status_code=200, response_model=ConfirmationRead,
             responses=problem_responses(404, 422), openapi_extra={"security": []})
async def confirm(token: Token, session: SessionDep) -> ConfirmationRead:
    """Confirm a request with the one-time link sent to a known contact; no login (unknown, used or expired: 404)."""
    return await service.confirm(session, token=token)


@router.get("", status_code=200, response_model=Page[RequestRead], responses=problem_responses(422))
async def list_requests(actor: RequestsReader, session: SessionDep, page: PageDep,
                        filters: FilterDep) -> Page[RequestRead]:
    """List the requests the caller may see, in order of receipt; the read is audited."""
    return await service.list_requests(session, actor=actor, filters=filters, params=page)


@router.get("/{request_id}", status_code=200, response_model=RequestDetail, responses=problem_responses(404))
async def get_request(request_id: RequestId, actor: RequestsReader, session: SessionDep) -> RequestDetail:
    """Read one request with its deadline, the actions allowed now and its transition log; the read is audited."""
    return await service.get_request(session, actor=actor, request_id=request_id)


@router.post("/{request_id}/transitions", status_code=200, response_model=RequestRead, dependencies=[Idempotent],
             responses=problem_responses(404, 409, 415, 422))
async def transition(request_id: RequestId, body: Annotated[Transition, Body()], actor: RequestsWriter,
                     session: SessionDep, settings: SettingsDep, wiring: WiringDep) -> RequestRead:
    """Move a request on: verify, link, start, extend, complete, reject, withdraw, lift_restriction (409 lists the allowed)."""
    return await service.transition(session, actor=actor, request_id=request_id, body=body, settings=settings,
                                    wiring=wiring)


@router.get("/{request_id}/export", status_code=200, response_class=Response, response_model=None, responses={
    **problem_responses(404, 409, 422),
    200: {"description": "The package: JSON (default), an HTML letter, or a zip with CSV per table",
          "content": {"application/json": {}, "text/html": {}, "application/zip": {}}}})
async def export(
    request_id: RequestId, actor: ExportsReader, session: SessionDep, wiring: WiringDep,
    format: Annotated[Literal["json", "html", "zip"],  # noqa: A002
                      Query(description="json, html (a letter) or zip")] = "json",
    lang: Annotated[Literal["fi", "sv", "en"] | None,
                    Query(description="The letter's language; default the person's")] = None,
) -> Response:
    """Download the package frozen at completion; the download is audited."""
    exported = await service.export(session, actor=actor, request_id=request_id, fmt=format, lang=lang,
                                    wiring=wiring)
    disposition = "inline" if format == "html" else "attachment"
    return Response(exported.content, media_type=exported.media_type, headers={
        "Content-Disposition": f'{disposition}; filename="{exported.filename}"', "X-Content-SHA256": exported.sha256})


@stats_router.get("/requests", status_code=200, response_model=RequestStats)
async def request_stats(actor: StatsReader, session: SessionDep) -> RequestStats:
    """Open requests by type and status, overdue, due within 7 days, median days to complete, extensions."""
    return await service.stats(session, actor=actor)

"""Endpoints: /v1/waitlist (entries, notifications, the public unsubscribe) and /v1/stats/waitlist."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from app.core.types import Line
from app.auth.deps import SettingsDep
from app.core.errors import Invalid, problem_responses
from app.db.pagination import Page, PageDep
from app.db.session import SessionDep
from app.idempotency.deps import Idempotent, IdempotentRoute
from app.waitlist import service, texts
from app.waitlist.auth import StatsReader, WaitlistReader, WaitlistWriter
from app.waitlist.models import EntryStatus
from app.waitlist.repository import EntryFilter
from app.waitlist.schemas import (
    Channel,
    EntryCreate,
    EntryCreated,
    EntryRead,
    Interest,
    NotificationCreate,
    NotificationRead,
    Tag,
    Unsubscribe,
    Unsubscribed,
    WaitlistStats,
)

router = APIRouter(prefix="/waitlist", tags=["waitlist"], route_class=IdempotentRoute)
stats_router = APIRouter(prefix="/stats", tags=["stats"], responses=problem_responses(401, 403))
_AUTH = problem_responses(401, 403)
EntryId = Annotated[uuid.UUID, Path(description="The entry's id")]
NotificationId = Annotated[uuid.UUID, Path(description="The notification's id")]


async def entry_filter(
    interest: Annotated[Interest | None, Query()] = None,
    tag: Annotated[Tag | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    status: Annotated[EntryStatus, Query()] = EntryStatus.active,
    guardian_id: Annotated[uuid.UUID | None, Query(description=(
        "Only the entries of this guardian's children (linked, or notified at the guardian's contact details)"))] = None,
) -> EntryFilter:
    """The list filters."""
    return EntryFilter(interest=interest, tag=tag, channel=channel, status=status, guardian_id=guardian_id)


@router.post("", status_code=201, response_model=EntryCreated, dependencies=[Idempotent], responses={
    **_AUTH, **problem_responses(409, 415, 422, 429),
    200: {"model": EntryCreated, "description": "The entry this person already has for the interest"}})
async def join(body: EntryCreate, actor: WaitlistWriter, session: SessionDep, settings: SettingsDep,
               response: Response) -> EntryCreated:
    """Put a person on the list; joining records the waitlist consent for each channel chosen."""
    entry, created = await service.join(session, actor=actor, data=body, settings=settings)
    if not created:
        response.status_code = 200
    return entry


@router.get("", status_code=200, response_model=Page[EntryRead], responses={**_AUTH, **problem_responses(422)})
async def list_entries(actor: WaitlistReader, session: SessionDep, page: PageDep,
                       filters: Annotated[EntryFilter, Depends(entry_filter)]) -> Page[EntryRead]:
    """List entries in FIFO order, filtered by interest, tag, channel and status; the read is audited."""
    return await service.list_entries(session, actor=actor, filters=filters, params=page)


async def unsubscribe_token(
    request: Request,
    token: Annotated[Line | None, Query(min_length=20, max_length=128,
                                      description="The link's token, for RFC 8058 one-click form posts")] = None,
) -> str:
    """The token: from the JSON body `{token}`, or from the link when a mail client posts the one-click form."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            return Unsubscribe.model_validate_json(await request.body()).token
        except ValidationError as exc:
            first = exc.errors()[0]
            raise Invalid(first["msg"], loc=["body", *first["loc"]]) from exc
    if token is None:
        raise Invalid("the token is required", loc=["body", "token"])
    return token


_UNSUBSCRIBE_BODY = {"requestBody": {"required": False, "content": {
    "application/json": {"schema": Unsubscribe.model_json_schema()},
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}}}},
}}}


@router.post("/unsubscribe", status_code=200, response_model=Unsubscribed, responses=problem_responses(404, 422),
             openapi_extra={"security": [], **_UNSUBSCRIBE_BODY})
async def unsubscribe(session: SessionDep, settings: SettingsDep,
                      token: Annotated[str, Depends(unsubscribe_token)]) -> Unsubscribed:
    """Leave the list with the token of any notice or of joining, without logging in (RFC 8058 one-click)."""
    return await service.unsubscribe(session, token=token, settings=settings)


@router.get("/unsubscribe", status_code=200, response_class=HTMLResponse, responses=problem_responses(422),
            openapi_extra={"security": []})
async def unsubscribe_page(token: Annotated[Line, Query(min_length=20, max_length=128)],
                           session: SessionDep) -> HTMLResponse:
    """The page a notice's link opens: one button that leaves the list (a GET never does, link scanners follow it)."""
    return HTMLResponse(texts.unsubscribe_page(token, await service.brand(session)))


@router.post("/notifications", status_code=201, response_model=NotificationRead, dependencies=[Idempotent],
             responses={**_AUTH, **problem_responses(415, 422, 429)})
async def notify(body: NotificationCreate, actor: WaitlistWriter, session: SessionDep,
                 settings: SettingsDep) -> NotificationRead:
    """Announce a free slot to the active entries with a current consent, in FIFO order (all or the first N)."""
    return await service.notify(session, actor=actor, data=body, settings=settings)


@router.get("/notifications/{notification_id}", status_code=200, response_model=NotificationRead,
            responses={**_AUTH, **problem_responses(404)})
async def get_notification(notification_id: NotificationId, actor: WaitlistReader,
                           session: SessionDep) -> NotificationRead:
    """One notification and how many it has reached."""
    return await service.get_notification(session, actor=actor, notification_id=notification_id)


@router.post("/notifications/{notification_id}/next", status_code=200, response_model=NotificationRead,
             dependencies=[Idempotent], responses={**_AUTH, **problem_responses(404, 409)})
async def next_wave(notification_id: NotificationId, actor: WaitlistWriter, session: SessionDep,
                    settings: SettingsDep) -> NotificationRead:
    """Notify the next N entries of an open first_n notification."""
    return await service.next_wave(session, actor=actor, notification_id=notification_id, settings=settings)


@router.post("/notifications/{notification_id}/close", status_code=200, response_model=NotificationRead,
             dependencies=[Idempotent], responses={**_AUTH, **problem_responses(404, 409)})
async def close(notification_id: NotificationId, actor: WaitlistWriter, session: SessionDep) -> NotificationRead:
    """Mark the slot taken; later waves are refused."""
    return await service.close(session, actor=actor, notification_id=notification_id)


@router.get("/{entry_id}", status_code=200, response_model=EntryRead, responses={**_AUTH, **problem_responses(404)})
async def get_entry(entry_id: EntryId, actor: WaitlistReader, session: SessionDep) -> EntryRead:
    """Read one entry with its FIFO position; the read is audited."""
    return await service.get_entry(session, actor=actor, entry_id=entry_id)


@router.post("/{entry_id}/enrolled", status_code=200, response_model=EntryRead, dependencies=[Idempotent],
             responses={**_AUTH, **problem_responses(404, 409)})
async def enrolled(entry_id: EntryId, actor: WaitlistWriter, session: SessionDep, settings: SettingsDep) -> EntryRead:
    """Mark an entry enrolled: it leaves the list and its waitlist consent is withdrawn."""
    return await service.end_entry(session, actor=actor, entry_id=entry_id, status=EntryStatus.enrolled,
                                   settings=settings)


@router.delete("/{entry_id}", status_code=200, response_model=EntryRead,
               responses={**_AUTH, **problem_responses(404, 409)})
async def remove(entry_id: EntryId, actor: WaitlistWriter, session: SessionDep, settings: SettingsDep) -> EntryRead:
    """Take an entry off the list (status removed); its waitlist consent is withdrawn."""
    return await service.end_entry(session, actor=actor, entry_id=entry_id, status=EntryStatus.removed,
                                   settings=settings)


@stats_router.get("/waitlist", status_code=200, response_model=WaitlistStats)
async def waitlist_stats(_: StatsReader, session: SessionDep) -> WaitlistStats:
    """Active entries per interest and channel, median wait, notices sent and failed, unsubscribes: counts only."""
    return await service.stats(session)

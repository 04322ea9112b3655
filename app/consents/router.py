"""Endpoints: the ledger under /v1/registrants/{id}/consents, receipts, /v1/audience and consent stats."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.core.csvcells import csv_text
from app.core.types import Line
from app.auth.deps import SettingsDep, require
from app.auth.principal import Principal
from app.auth.roles import Scope
from app.consents import service, texts
from app.consents.schemas import (
    AudienceExplanation,
    AudienceMember,
    ConsentEventCreate,
    ConsentEventWithReceipt,
    ConsentReceipt,
    ConsentStateRead,
    ConsentStats,
    OptedOut,
    OptOut,
)
from app.core.config import Settings
from app.core.errors import Invalid, problem_responses
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


async def audience_page(
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


@router.get("/audience", status_code=200, response_model=Page[AudienceMember] | AudienceExplanation,
            responses={**problem_responses(404, 422), 200: {
                "description": "A page of the audience (JSON or CSV); with `explain=true`, an AudienceExplanation",
                "content": {"text/csv": {}}}})
async def audience(
    request: Request,
    actor: ConsentsRead,
    session: SessionDep,
    settings: SettingsDep,
    page: Annotated[PageParams, Depends(audience_page)],
    purpose: Annotated[Line, Query(max_length=64, description="A purpose code of the register profile")],
    channel: Annotated[Channel, Query(description="The channel to contact them on")],
    format: Annotated[Literal["json", "csv"], Query(description="`csv`: the same page as CSV")] = "json",
    explain: Annotated[bool, Query(description="With `registrant_id`: why that one registrant is in or out")] = False,
    registrant_id: Annotated[uuid.UUID | None, Query(description="The registrant to explain")] = None,
) -> Response:
    """Who may be contacted for a purpose on a channel right now, on which basis, each with a one-click opt-out."""
    if explain:
        if registrant_id is None:
            raise Invalid("explain=true needs the registrant_id to explain", loc=["query", "registrant_id"])
        explained = await service.explain(session, actor=actor, purpose_code=purpose, channel=channel.value,
                                          registrant_id=registrant_id)
        return Response(explained.model_dump_json(), media_type="application/json")
    links = service.Links(base_url=settings.public_base_url, key=settings.optout_key())
    result = await service.audience(session, actor=actor, purpose_code=purpose, channel=channel.value, params=page,
                                    links=links)
    if format == "json":
        body = orjson.dumps({"items": result.items, "next_cursor": result.next_cursor})
        return Response(body, media_type="application/json")
    headers = {}
    if result.next_cursor:
        headers["X-Next-Cursor"] = result.next_cursor
        headers["Link"] = f'<{request.url.include_query_params(cursor=result.next_cursor)}>; rel="next"'
    document = csv_text(CSV_COLUMNS, ([member[c] for c in CSV_COLUMNS] for member in result.items))
    return Response(document, media_type="text/csv; charset=utf-8", headers=headers)


CSV_COLUMNS = ("registrant_id", "language", "email", "phone", "basis", "contact_person", "optout_url",
               "list_unsubscribe", "list_unsubscribe_post")


async def optout_query(
    request: Request,
    token: Annotated[Line | None, Query(min_length=20, max_length=128, description="The link's token")] = None,
    purpose: Annotated[Line | None, Query(max_length=64, description="The link's purpose")] = None,
    channel: Annotated[Channel | None, Query(description="The link's channel")] = None,
) -> OptOut:
    """What to opt out of: the JSON body `{token, purpose, channel}`, or the link's query (RFC 8058 form posts)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            return OptOut.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            raise Invalid(first["msg"], loc=["body", *first["loc"]]) from exc
    for name, value in (("token", token), ("purpose", purpose), ("channel", channel)):
        if value is None:
            raise Invalid(f"the {name} is required", loc=["query", name])
    try:  # the query passed its own checks; the model's (e.g. the purpose code's pattern) may still refuse it
        return OptOut(token=token, purpose=purpose, channel=channel)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(first["msg"], loc=["query", *first["loc"]]) from exc


_OPTOUT_BODY = {"requestBody": {"required": False, "content": {
    "application/json": {"schema": OptOut.model_json_schema()},
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}}}},
}}}


@router.post("/optout", status_code=200, response_model=OptedOut, responses=problem_responses(404, 422),
             openapi_extra={"security": [], **_OPTOUT_BODY})
async def opt_out(session: SessionDep, settings: SettingsDep,
                  body: Annotated[OptOut, Depends(optout_query)]) -> OptedOut:
    """Stop one purpose on one channel from a message's link, without logging in (RFC 8058 one-click)."""
    return await service.opt_out(session, token=body.token, purpose_code=body.purpose, channel=body.channel.value,
                                 key=settings.optout_key(), policy_url=_policy_url(settings))


@router.get("/optout", status_code=200, response_class=HTMLResponse, responses=problem_responses(404, 422),
            openapi_extra={"security": []})
async def opt_out_page(session: SessionDep, settings: SettingsDep,
                       token: Annotated[Line, Query(min_length=20, max_length=128)],
                       purpose: Annotated[Line, Query(max_length=64)], channel: Channel) -> HTMLResponse:
    """The page a message's link opens: one button, in the person's language (a GET never opts out)."""
    language, profile = await service.optout_language(session, token=token, purpose_code=purpose,
                                                      channel=channel.value, key=settings.optout_key())
    return HTMLResponse(texts.optout_page(profile=profile, language=language, token=token, purpose=purpose,
                                          channel=channel.value))


@router.get("/stats/consents", status_code=200, response_model=ConsentStats)
async def consent_stats(actor: StatsRead, session: SessionDep) -> ConsentStats:
    """How many registrants stand where per purpose, channel and state; counts only."""
    return await service.stats(session)

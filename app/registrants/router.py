"""Endpoints: /v1/registrants (registrants, history, records) and /v1/stats/registrants."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import TypeAdapter

from app.core.types import Instant, Line
from app.core.errors import Invalid, problem_responses
from app.core.phone import normalise_phone
from app.db.pagination import Page, PageDep
from app.auth.deps import SettingsDep
from app.db.session import SessionDep
from app.idempotency.deps import Idempotent, IdempotentRoute
from app.registrants import service
from app.registrants.auth import RegistrantsReader, RegistrantsWriter, StatsReader
from app.registrants.repository import RegistrantFilter
from app.registrants.schemas import (
    GuardianLinkCreate,
    HistoryRead,
    Kind,
    RecordCreate,
    RecordRead,
    RecordType,
    RegistrantCreate,
    RegistrantRead,
    RegistrantStats,
    RegistrantUpdate,
    RegistrantUpsert,
    Status,
)

router = APIRouter(prefix="/registrants", tags=["registrants"], responses=problem_responses(401, 403),
                   route_class=IdempotentRoute)
stats_router = APIRouter(prefix="/stats", tags=["stats"], responses=problem_responses(401, 403))

IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=100,
                                       description="The ETag the change is based on; 412 if it is stale")]
RegistrantId = Annotated[uuid.UUID, Path(description="The registrant's id")]
# A page of registrants as JSON (the lean route, app/registrants/lean.py, renders it the same way).
PAGE_JSON = TypeAdapter(Page[RegistrantRead])
_ETAG_HEADER = {"ETag": {"description": "The registrant's version", "schema": {"type": "string"}}}


def _with_etag(response: Response, registrant: RegistrantRead, status: int | None = None) -> RegistrantRead:
    """The registrant, its ETag on the response (and the status, when it is not the route's default)."""
    response.headers["ETag"] = service.etag(registrant.version)
    if status is not None:
        response.status_code = status
    return registrant


async def registrant_filter(
    email: Annotated[Line | None, Query(max_length=254, description="Exact, case-insensitive")] = None,
    phone: Annotated[Line | None, Query(max_length=40, description="Any format; normalised before matching")] = None,
    ref: Annotated[Line | None, Query(max_length=270, description="An external reference, `system:id`")] = None,
    name: Annotated[Line | None, Query(min_length=1, max_length=200,
                                      description="Prefix of a given, family or organisation name")] = None,
    kind: Annotated[Kind | None, Query()] = None,
    status: Annotated[list[Status] | None, Query(description="Default: active only")] = None,
    customer_type: Annotated[Line | None, Query(max_length=40)] = None,
    created_from: Annotated[Instant | None, Query(description="Inclusive (RFC 3339)")] = None,
    created_to: Annotated[Instant | None, Query(description="Exclusive (RFC 3339)")] = None,
    updated_from: Annotated[Instant | None, Query(description="Inclusive (RFC 3339)")] = None,
    updated_to: Annotated[Instant | None, Query(description="Exclusive (RFC 3339)")] = None,
    attention: Annotated[bool | None, Query(description="Only those flagged for staff attention")] = None,
) -> RegistrantFilter:
    """The list filters, with the phone normalised and the reference split."""
    if phone is not None:
        try:
            phone = normalise_phone(phone)
        except ValueError as exc:
            raise Invalid(str(exc), loc=["query", "phone"]) from exc
    system, sep, external_id = (ref or "").partition(":")
    if ref is not None and not (sep and system and external_id):
        raise Invalid("write the reference as system:id", loc=["query", "ref"])
    return RegistrantFilter(email=email, phone=phone, ref=(system, external_id) if ref else None, name=name, kind=kind,
                            statuses=tuple(sorted(set(status or [Status.active]))), customer_type=customer_type,
                            created_from=created_from, created_to=created_to, updated_from=updated_from,
                            updated_to=updated_to, attention=attention)


FilterDep = Annotated[RegistrantFilter, Depends(registrant_filter)]


@router.post("", status_code=201, response_model=RegistrantRead, dependencies=[Idempotent], responses={
    **problem_responses(403, 409, 410, 415, 422), 201: {"headers": _ETAG_HEADER}})
async def create_registrant(body: RegistrantCreate, actor: RegistrantsWriter, session: SessionDep,
                            settings: SettingsDep, response: Response) -> RegistrantRead:
    """Create a registrant (a person or an organisation) with its external references."""
    registrant = await service.create_registrant(session, actor=actor, data=body, ref_keys=settings.erasure_key_list())
    return _with_etag(response, registrant)


@router.get("", status_code=200, response_model=Page[RegistrantRead], responses=problem_responses(422))
async def list_registrants(actor: RegistrantsReader, session: SessionDep, page: PageDep,
                           filters: FilterDep) -> Response:
    """List the registrants the caller may see, in creation order; the read is audited."""
    found = await service.list_registrants(session, actor=actor, filters=filters, params=page)
    # Serialised once, straight to JSON (the model was validated when the page was built).
    return Response(PAGE_JSON.dump_json(found, by_alias=True), media_type="application/json")


@router.put("/by-ref/{system}/{external_id}", status_code=200, response_model=RegistrantRead, responses={
    **problem_responses(403, 404, 409, 410, 412, 415, 422), 200: {"headers": _ETAG_HEADER},
    201: {"model": RegistrantRead, "description": "Created", "headers": _ETAG_HEADER}})
async def upsert_by_ref(
    system: Annotated[Line, Path(pattern=r"^[a-z][a-z0-9_-]{0,63}$")],
    external_id: Annotated[Line, Path(min_length=1, max_length=200)],
    body: RegistrantUpsert, actor: RegistrantsWriter, session: SessionDep, settings: SettingsDep,
    response: Response, if_match: IfMatch = None,
) -> RegistrantRead:
    """Create (201) or replace (200) the registrant an external reference names; 410 if that person was erased."""
    registrant, created = await service.upsert_by_ref(session, actor=actor, system=system, external_id=external_id,
                                                      data=body, if_match=if_match, ref_keys=settings.erasure_key_list())
    return _with_etag(response, registrant, 201 if created else None)


@router.get("/{registrant_id}", status_code=200, response_model=RegistrantRead, responses={
    **problem_responses(404), 200: {"headers": _ETAG_HEADER}})
async def get_registrant(registrant_id: RegistrantId, actor: RegistrantsReader, session: SessionDep,
                         response: Response) -> RegistrantRead:
    """Read one registrant; the read is audited."""
    registrant = await service.get_registrant(session, actor=actor, registrant_id=registrant_id)
    return _with_etag(response, registrant)


@router.patch("/{registrant_id}", status_code=200, response_model=RegistrantRead, responses={
    **problem_responses(404, 409, 412, 415, 422), 200: {"headers": _ETAG_HEADER}})
async def update_registrant(registrant_id: RegistrantId, body: RegistrantUpdate, actor: RegistrantsWriter,
                            session: SessionDep, response: Response, if_match: IfMatch = None) -> RegistrantRead:
    """Change the fields sent (null clears one); with If-Match, 412 if someone changed it first."""
    registrant = await service.update_registrant(session, actor=actor, registrant_id=registrant_id, data=body,
                                                 if_match=if_match)
    return _with_etag(response, registrant)


@router.post("/{registrant_id}/guardians", status_code=200, response_model=RegistrantRead, responses={
    **problem_responses(404, 409, 412, 415, 422), 200: {"headers": _ETAG_HEADER}})
async def add_guardian(registrant_id: RegistrantId, body: GuardianLinkCreate, actor: RegistrantsWriter,
                       session: SessionDep, response: Response, if_match: IfMatch = None) -> RegistrantRead:
    """Link a guardian (a person of 18 or more, a registrant of its own) to a child; returns the child."""
    registrant = await service.add_guardian(session, actor=actor, registrant_id=registrant_id,
                                            guardian_id=body.guardian_id, if_match=if_match)
    return _with_etag(response, registrant)


@router.delete("/{registrant_id}/guardians/{guardian_id}", status_code=200, response_model=RegistrantRead,
               responses={**problem_responses(404, 409, 412, 422), 200: {"headers": _ETAG_HEADER}})
async def remove_guardian(registrant_id: RegistrantId, guardian_id: Annotated[uuid.UUID, Path()],
                          actor: RegistrantsWriter, session: SessionDep, response: Response,
                          if_match: IfMatch = None) -> RegistrantRead:
    """Unlink a guardian from a child; a child under the guardian age must keep one; returns the child."""
    registrant = await service.remove_guardian(session, actor=actor, registrant_id=registrant_id,
                                               guardian_id=guardian_id, if_match=if_match)
    return _with_etag(response, registrant)


@router.get("/{registrant_id}/history", status_code=200, response_model=Page[HistoryRead],
            responses=problem_responses(404, 422))
async def registrant_history(registrant_id: RegistrantId, actor: RegistrantsReader, session: SessionDep,
                             page: PageDep) -> Page[HistoryRead]:
    """A registrant's changes: who, when, which fields, old and new values."""
    return await service.history(session, actor=actor, registrant_id=registrant_id, params=page)


@router.post("/{registrant_id}/records", status_code=201, response_model=RecordRead, dependencies=[Idempotent],
             responses={**problem_responses(403, 404, 409, 413, 415, 422), 200: {
                 "model": RecordRead, "description": "The record this source and external id already made"}})
async def add_record(registrant_id: RegistrantId, body: RecordCreate, actor: RegistrantsWriter, session: SessionDep,
                     response: Response) -> RecordRead:
    """Add a customer-relationship record (the same source and external id gives the first record)."""
    record, created = await service.add_record(session, actor=actor, registrant_id=registrant_id, data=body)
    if not created:
        response.status_code = 200
    return record


@router.get("/{registrant_id}/records", status_code=200, response_model=Page[RecordRead],
            responses=problem_responses(404, 422))
async def list_records(
    registrant_id: RegistrantId, actor: RegistrantsReader, session: SessionDep, page: PageDep,
    type: Annotated[list[RecordType] | None, Query(description="Only these types")] = None,  # noqa: A002
    since: Annotated[Instant | None, Query(alias="from", description="Inclusive (RFC 3339)")] = None,
    until: Annotated[Instant | None, Query(alias="to", description="Exclusive (RFC 3339)")] = None,
) -> Page[RecordRead]:
    """List a registrant's records, newest first; the read is audited."""
    return await service.list_records(session, actor=actor, registrant_id=registrant_id,
                                      types=tuple(type) if type else None, since=since, until=until, params=page)


@stats_router.get("/registrants", status_code=200, response_model=RegistrantStats)
async def registrant_stats(actor: StatsReader, session: SessionDep) -> RegistrantStats:
    """Registrant counts by kind, status and customer type (no personal data)."""
    return await service.stats(session, actor=actor)

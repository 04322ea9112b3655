"""Endpoints: /v1/register (the profile, its versions, the public statement, the Art. 30 record)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from app.core.types import Int32
from app.auth.deps import SettingsDep
from app.core.errors import problem_responses
from app.db.pagination import Page, PageDep
from app.db.session import SessionDep
from app.register import service
from app.register.auth import RegisterReader, RegisterWriter, RopaReader
from app.wiring import WiringDep
from app.register.schemas import RegisterProfile, RegisterVersionRead, RegisterVersionSummary, RopaRead, StatementRead

router = APIRouter(prefix="/register", tags=["register"])

_STATEMENT_CONTENT = {200: {"description": "The privacy statement",
                            "content": {"text/html": {}, "text/markdown": {}}}}


@router.get("", status_code=200, response_model=RegisterVersionRead, responses=problem_responses(401, 403, 404))
async def get_register(_: RegisterReader, session: SessionDep) -> RegisterVersionRead:
    """The register profile in force, with its version number and date."""
    return await service.get_current(session)


@router.put("", status_code=200, response_model=RegisterVersionRead,
            responses=problem_responses(401, 403, 409, 422))
async def put_register(body: RegisterProfile, actor: RegisterWriter, session: SessionDep,
                       wiring: WiringDep, settings: SettingsDep) -> RegisterVersionRead:
    """Replace the profile: the whole document is validated and stored as a new version."""
    return await service.put_profile(session, actor=actor, profile=body, wiring=wiring,
                                     allowlist=settings.callback_allowlist)


@router.get("/versions", status_code=200, response_model=Page[RegisterVersionSummary],
            responses=problem_responses(401, 403, 422))
async def list_register_versions(_: RegisterReader, session: SessionDep, page: PageDep) -> Page[RegisterVersionSummary]:
    """The versions of the profile, newest first."""
    return await service.list_versions(session, params=page)


@router.get("/versions/{number}", status_code=200, response_model=RegisterVersionRead,
            responses=problem_responses(401, 403, 404, 422))
async def get_register_version(number: Annotated[Int32, Path()], _: RegisterReader,
                               session: SessionDep) -> RegisterVersionRead:
    """One earlier (or the current) version of the profile."""
    return await service.get_version(session, number=number)


@router.get("/statement", status_code=200, response_model=StatementRead,
            responses={**_STATEMENT_CONTENT, **problem_responses(404, 422)}, openapi_extra={"security": []})
async def get_statement(
    session: SessionDep,
    wiring: WiringDep,
    lang: Annotated[Literal["fi", "en"], Query(description="Language; Finnish by default")] = "fi",
    fmt: Annotated[Literal["html", "md", "json"], Query(alias="format", description="html, md or json")] = "html",
) -> Response:
    """The public privacy statement (tietosuojaseloste), rendered from the current profile; no login needed."""
    rendered = await service.statement(session, lang=lang, fmt=fmt, rules=wiring.retention_rules)
    return Response(rendered.content, media_type=rendered.media_type)


@router.get("/ropa", status_code=200, response_model=RopaRead, responses=problem_responses(401, 403, 404))
async def get_ropa(actor: RopaReader, session: SessionDep, wiring: WiringDep) -> RopaRead:
    """The record of processing activities of GDPR Art. 30(1), items (a) to (g)."""
    return await service.ropa(session, actor=actor, rules=wiring.retention_rules)

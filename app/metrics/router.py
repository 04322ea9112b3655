"""`GET /metrics`: Prometheus text format, for a client with the `metrics:read` scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.auth.deps import require
from app.auth.principal import Principal
from app.auth.roles import Scope
from app.core.errors import problem_responses
from app.db.session import SessionDep
from app.metrics import service
from app.wiring import WiringDep

router = APIRouter(tags=["metrics"])
MetricsReader = Annotated[Principal, Depends(require(Scope.metrics_read))]


@router.get("/metrics", status_code=200, response_class=Response, responses={
    200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "Prometheus text format"},
    **problem_responses(401, 403)})
async def metrics(request: Request, _: MetricsReader, session: SessionDep, wiring: WiringDep) -> Response:
    """Request counts and latencies, outbox queue, request deadlines, audit chain and pool, for Prometheus."""
    body = await service.render(session, request.app.state.db, gauges=wiring.gauges)
    return Response(body, media_type=CONTENT_TYPE_LATEST)

"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.core.errors import problem_response, problem_responses
from app.db import migrations

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Probe answer."""

    status: str
    database: str | None = None
    revision: str | None = None


@router.get("/healthz", status_code=200, response_model=Health)
async def healthz() -> Health:
    """The process is up (no dependencies checked)."""
    return Health(status="ok")


@router.get("/readyz", status_code=200, response_model=Health, responses=problem_responses(503))
async def readyz(request: Request) -> Health | object:
    """The database answers and is migrated to the head revision."""
    try:
        async with request.app.state.db.engine.connect() as conn:
            current = await conn.run_sync(migrations.current_revision)
    except Exception:  # any failure to reach the database means not ready
        return problem_response(503, slug="not-ready", title="Not ready", detail="the database is not reachable")
    head = migrations.head_revision()
    if current != head:
        return problem_response(503, slug="not-ready", title="Not ready",
                                detail=f"the database is at revision {current}, the code expects {head}")
    return Health(status="ok", database="reachable", revision=current)

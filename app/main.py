"""create_app(): routers, error handlers, middleware, lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import __version__, api
from app.audit import sequencer
from app.core.config import Settings, get_settings
from app.core.errors import install_error_handlers, problem_openapi
from app.core.lean import LeanRoutes
from app.core.middleware import RequestGuard
from app.db.session import Database
from app.health.router import router as health_router
from app.metrics.router import router as metrics_router
from app.outbox.worker import start_in_process
from app.registrants import lean as registrants_lean
from app.wiring import build as build_wiring

DESCRIPTION = """\
Rekisteri keeps a company's personal-data register (*henkilörekisteri*) the GDPR way:
the people in it, what they agreed to or objected to, the waitlist, and the data-subject
requests they send, and it lets only named persons near any of it. Every read and write
of personal data is audited in a hash-chained log.

Authenticate with `POST /v1/auth/token` and send `Authorization: Bearer <token>`.
Errors are RFC 9457 problem documents (`application/problem+json`).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application."""
    settings = settings or get_settings()
    settings.verification_key()  # fail at start, not at the first request, when keys are missing

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The embedded default needs no separate `rekisteri worker`: the outbox drains in-process.
        background = start_in_process(app.state.db, settings, app.state.wiring) if settings.runs_worker_in_process else None
        # The audit sequencer too (development; in production `rekisteri worker` runs it).
        sealer = sequencer.start_in_process(app.state.db, settings) if settings.runs_sequencer_in_process else None
        # What the process built to start (~200,000 objects: models, schemas, routes) lives as long as it does; a full
        # garbage collection walking all of it paused every request for tens of milliseconds (the p99 under load).
        gc.freeze()
        yield
        if background is not None:
            await background.stop()
        if sealer is not None:
            await sealer.stop()
        await app.state.db.engine.dispose()

    docs = settings.docs_enabled
    app = FastAPI(
        title="Rekisteri",
        version=__version__,
        summary="A personal-data register service (henkilörekisteri) for small companies",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.wiring = build_wiring(settings)  # the composition root: every domain's hooks, on this app only
    app.state.db = Database.from_settings(settings)
    install_error_handlers(app)
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(api.router)
    if settings.lean_routes:
        # Innermost of the middleware, so the guard (request id, access log, metrics) and CORS wrap it too.
        app.add_middleware(LeanRoutes, state=app.state, handlers={("GET", "/v1/registrants"): registrants_lean.lookup},
                           prefixes=(registrants_lean.UPSERT,))
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key"],
                           expose_headers=["ETag", "X-Request-Id", "Retry-After"])
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, trusted_proxies=settings.trusted_proxies)
    return app


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` is built on first access, so importing this module has no side effects.
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)

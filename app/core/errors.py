"""Domain errors and the one place that renders every error as RFC 9457 problem+json."""

from __future__ import annotations

import errno
import logging
import socket
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.context import current_request_id, route_template

log = logging.getLogger("rekisteri")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:rekisteri:problem:"


class ProblemError(BaseModel):
    """One field-level problem."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details (the schema every error response uses)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None


class DomainError(Exception):
    """Base of every error a service raises; subclasses fix status and type."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "a valid bearer token is required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="rekisteri"'})
        super().__init__(detail, **kwargs)


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class PasswordChangeRequired(DomainError):
    status, slug, title = 403, "password-change-required", "Password change required"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class Gone(DomainError):
    status, slug, title = 410, "gone", "Gone"


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class Invalid(DomainError):
    """Input that is well-formed but breaks a rule; name the field in `errors`."""

    status, slug, title = 422, "validation-error", "Validation failed"

    def __init__(self, detail: str, *, loc: list[str | int] | None = None, **kwargs: Any) -> None:
        if loc is not None and "errors" not in kwargs:
            kwargs["errors"] = [{"loc": loc, "msg": detail}]
        super().__init__(detail, **kwargs)


class TooManyRequests(DomainError):
    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, **kwargs)


def problem_response(
    status: int,
    *,
    slug: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """Render a problem document."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": current_request_id(),
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _loc(loc: tuple[Any, ...]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": _loc(e.get("loc", ())), "msg": e.get("msg", "invalid")} for e in exc.errors()]
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
    return problem_response(422, slug="validation-error", title="Validation failed",
                            detail=f"invalid input: {fields}", errors=errors)


async def _domain(_: Request, exc: DomainError) -> JSONResponse:
    return problem_response(exc.status, slug=exc.slug, title=exc.title, detail=exc.detail,
                            errors=exc.errors, headers=exc.headers, extra=exc.extra)


# Errors raised by the framework rather than by a service: a body it could not parse (e.g. not UTF-8),
# an unknown path, a method the path does not have, an oversized body.
_FRAMEWORK = {
    400: ("malformed-body", "Malformed request body", "the body could not be parsed: send UTF-8 encoded JSON"),
    404: ("not-found", "Not found", None),
    405: ("method-not-allowed", "Method not allowed", None),
    413: ("payload-too-large", "Payload too large", None),
}


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    slug, title, detail = _FRAMEWORK.get(exc.status_code, (None, None, None))
    return problem_response(exc.status_code, slug=slug, title=title, detail=detail or str(exc.detail),
                            headers=getattr(exc, "headers", None))


# The database is unreachable or refused the connection: a pool that cannot connect, a connection that was
# cut, a server that is starting up or shutting down. The client may retry; nothing was committed.
DATABASE_OUTAGE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError,
    ConnectionError, TimeoutError, socket.gaierror,
)
RETRY_AFTER_SECONDS = 5


def is_database_outage(exc: BaseException) -> bool:
    """Whether an error means the database cannot be reached right now."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OSError) and exc.errno in _CONNECT_ERRNOS:
        return True
    return isinstance(exc, DATABASE_OUTAGE)


_CONNECT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}


async def _outage(request: Request, exc: Exception) -> JSONResponse:
    if not is_database_outage(exc):
        return await _unexpected(request, exc)
    log.warning("database unavailable request_id=%s path=%s error=%s", current_request_id(), request.url.path,
                type(exc).__name__)
    return problem_response(503, slug="service-unavailable", title="Service unavailable",
                            detail="the database cannot be reached right now; nothing was saved, retry later",
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def unexpected_response(route: str, exc: BaseException) -> JSONResponse:
    """The 500 problem for an error nothing else handled (logged with its traceback, never shown)."""
    # The route template, not the path: paths carry ids and sometimes personal data.
    log.error("unhandled error request_id=%s route=%s", current_request_id(), route, exc_info=exc)
    return problem_response(500, slug="internal-error", title="Internal server error",
                            detail="an unexpected error occurred; quote the request id when reporting it")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return unexpected_response(route_template(request.scope), exc)


async def error_response(request: Request, exc: Exception) -> JSONResponse:
    """What the handlers answer to an error raised outside a route (a lean route, app/core/lean.py): 503 when the
    database cannot be reached, 500 for anything else."""
    return await _outage(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of error through the problem renderer."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    # Handled below the server-error layer, so the connection stays open for the client's retry.
    for kind in (sa_exc.DBAPIError, sa_exc.DisconnectionError, sa_exc.TimeoutError, OSError, TimeoutError):
        app.add_exception_handler(kind, _outage)
    app.add_exception_handler(Exception, _unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses."""
    return {status: {"model": Problem, "description": HTTPStatus(status).phrase} for status in statuses}


# Errors any operation may answer with, whatever its own rules: documented on every operation they apply to.
_SURFACE = {
    "400": "Malformed body: not UTF-8 or not parseable",
    "413": "Payload too large",
    "415": "Unsupported media type",
    "422": "Validation failed: the `errors` name each field",
    "503": "The database cannot be reached; retry after `Retry-After` seconds",
}
_NO_DATABASE = {"/healthz"}


def _document_error_surface(path: str, operation: dict[str, Any]) -> None:
    """Add the statuses the framework and the middleware answer with to one operation's responses."""
    responses = operation.setdefault("responses", {})
    wanted = []
    if "requestBody" in operation:
        wanted += ["400", "413", "415", "422"]
    elif operation.get("parameters"):
        wanted.append("422")
    if path not in _NO_DATABASE:
        wanted.append("503")
    for status in wanted:
        responses.setdefault(status, {"description": _SURFACE[status]})
    for status in ("429", "503"):
        if status in responses:
            responses[status].setdefault("headers", {"Retry-After": {
                "description": "Seconds to wait before retrying", "schema": {"type": "integer"}}})


def problem_openapi(app: FastAPI) -> Any:
    """The app's OpenAPI document with every error response described as problem+json."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                             description=app.description, routes=app.routes, tags=app.openapi_tags)
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                _document_error_surface(path, operation)
                for status, response in operation.get("responses", {}).items():
                    if status[0] in "45":
                        response["content"] = problem
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        components.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
        app.openapi_schema = schema
        return schema

    return openapi

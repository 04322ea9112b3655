"""Dependencies that turn a bearer token into a principal and enforce scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import service
from app.auth.principal import Principal
from app.auth.roles import Scope
from app.core.config import Settings
from app.core.errors import Forbidden, PasswordChangeRequired, Unauthorized
from app.db.session import SessionDep

_bearer = HTTPBearer(auto_error=False, description="An access token from `POST /v1/auth/token`")


def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


@dataclass(frozen=True)
class Caller:
    """A verified caller and whether its token may only change the password."""

    principal: Principal
    password_change_only: bool


async def authenticate(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Verify the bearer token of the Authorization header (never one in the query string)."""
    if "access_token" in request.query_params:
        raise Unauthorized("tokens are accepted only in the Authorization header")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    principal, password_only = await service.principal_for_token(session, settings, token=credentials.credentials)
    return Caller(principal, password_only)


CallerDep = Annotated[Caller, Depends(authenticate)]


def require(scope: Scope) -> Callable[[Caller], Awaitable[Principal]]:
    """A dependency that admits callers whose token carries `scope`."""

    async def dependency(caller: CallerDep) -> Principal:
        if caller.password_change_only:
            raise PasswordChangeRequired("this token may only change the password: POST /v1/auth/password")
        if not caller.principal.has(scope):
            raise Forbidden(f"this endpoint needs the scope {scope.value!r}")
        return caller.principal

    dependency.__name__ = f"require_{scope.name}"
    return dependency


async def any_role(caller: CallerDep) -> Principal:
    """Any authenticated caller with a full (not password-change-only) token."""
    if caller.password_change_only:
        raise PasswordChangeRequired("this token may only change the password: POST /v1/auth/password")
    return caller.principal


Authenticated = Annotated[Principal, Depends(any_role)]
UsersAdmin = Annotated[Principal, Depends(require(Scope.users_admin))]
ClientsAdmin = Annotated[Principal, Depends(require(Scope.clients_admin))]
AuditReader = Annotated[Principal, Depends(require(Scope.audit_read))]

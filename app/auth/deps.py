"""Dependencies that turn a bearer token into a principal and enforce scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2

from app.auth import service
from app.auth.principal import Principal
from app.auth.roles import Scope
from app.core.config import Settings
from app.core.context import set_principal_id
from app.core.errors import Forbidden, PasswordChangeRequired, Unauthorized
from app.db.session import SessionDep

TOKEN_URL = "/v1/auth/token"
# The OpenAPI page's Authorize button logs a person in (password) or a machine client (client credentials);
# a one-time password yields a token that may only change the password, as everywhere else.
_oauth2 = OAuth2(
    flows=OAuthFlows(password=OAuthFlowPassword(tokenUrl=TOKEN_URL),
                     clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL)),
    scheme_name="OAuth2",
    description="A bearer token from `POST /v1/auth/token`",
    auto_error=False,
)


async def get_settings_dep(request: Request) -> Settings:
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
    authorization: Annotated[str | None, Depends(_oauth2)],
) -> Caller:
    """Verify the bearer token of the Authorization header (never one in the query string)."""
    if "access_token" in request.query_params:
        raise Unauthorized("tokens are accepted only in the Authorization header")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    principal, password_only = await service.principal_for_token(session, settings, token=token.strip())
    set_principal_id(principal.subject)
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

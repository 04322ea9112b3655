"""Endpoints: /v1/auth (tokens, me, password), /v1/users and /v1/clients."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request

from app.core.types import Line
from app.auth import service
from app.auth.deps import CallerDep, ClientsAdmin, SettingsDep, UsersAdmin
from app.auth.schemas import (
    ClientCreate,
    ClientRead,
    ClientWithSecret,
    Me,
    PasswordChange,
    TokenResponse,
    UserCreate,
    UserRead,
    UserUpdate,
    UserWithPassword,
)
from app.core.errors import Invalid, PasswordChangeRequired, problem_responses
from app.db.pagination import Page, PageDep
from app.db.session import SessionDep

auth_router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"], responses=problem_responses(401, 403))
clients_router = APIRouter(prefix="/clients", tags=["clients"], responses=problem_responses(401, 403))


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid("malformed Basic credentials", loc=["header", "authorization"]) from exc
    return unquote(client_id), unquote(secret)


@auth_router.post(
    "/token",
    status_code=200,
    response_model=TokenResponse,
    responses=problem_responses(401, 415, 422, 429),
    openapi_extra={"security": []},
)
async def token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    grant_type: Annotated[Literal["password", "client_credentials"], Form()],
    username: Annotated[Line | None, Form(max_length=254)] = None,
    password: Annotated[Line | None, Form(max_length=1024)] = None,
    client_id: Annotated[Line | None, Form(max_length=64)] = None,
    client_secret: Annotated[Line | None, Form(max_length=256)] = None,
    scope: Annotated[Line | None, Form(max_length=1024)] = None,
) -> TokenResponse:
    """Issue an access token: `password` grant for named persons, `client_credentials` for machine clients."""
    if grant_type == "password":
        if not username or not password:
            raise Invalid("username and password are required", loc=["body", "username" if not username else "password"])
        return await service.login_with_password(session, settings, email=username, password=password, scope=scope)
    basic = _basic_credentials(request)
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        raise Invalid("client_id and client_secret are required (form fields or HTTP Basic)",
                      loc=["body", "client_id" if not client_id else "client_secret"])
    return await service.login_with_client(session, settings, client_id=client_id, secret=client_secret, scope=scope)


@auth_router.get("/me", status_code=200, response_model=Me, responses=problem_responses(401, 403))
async def me(caller: CallerDep, session: SessionDep) -> Me:
    """Who the token speaks for: a person's name and email, or a client's name and system; role and scopes."""
    if caller.password_change_only:
        raise PasswordChangeRequired("this token may only change the password: POST /v1/auth/password")
    return await service.describe(session, principal=caller.principal)


@auth_router.post("/password", status_code=200, response_model=TokenResponse, responses=problem_responses(401, 403, 422))
async def change_password(body: PasswordChange, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> TokenResponse:
    """Choose a new password (also with a one-time-password token); earlier tokens stop working."""
    return await service.change_password(session, settings, principal=caller.principal,
                                         current=body.current_password, new=body.new_password)


@users_router.post("", status_code=201, response_model=UserWithPassword, responses=problem_responses(409, 422))
async def create_user(body: UserCreate, actor: UsersAdmin, session: SessionDep) -> UserWithPassword:
    """Create a named person's account; the response carries its one-time password, shown once."""
    return await service.create_user(session, actor=actor, data=body)


@users_router.get("", status_code=200, response_model=Page[UserRead], responses=problem_responses(422))
async def list_users(actor: UsersAdmin, session: SessionDep, page: PageDep) -> Page[UserRead]:
    """List accounts in creation order."""
    return await service.list_users(session, actor=actor, params=page)


@users_router.get("/{user_id}", status_code=200, response_model=UserRead, responses=problem_responses(404))
async def get_user(user_id: uuid.UUID, actor: UsersAdmin, session: SessionDep) -> UserRead:
    """Read one account."""
    return await service.get_user(session, actor=actor, user_id=user_id)


@users_router.patch("/{user_id}", status_code=200, response_model=UserRead, responses=problem_responses(404, 409, 422))
async def update_user(user_id: uuid.UUID, body: UserUpdate, actor: UsersAdmin, session: SessionDep) -> UserRead:
    """Rename an account, change its role or (de)activate it."""
    return await service.update_user(session, actor=actor, user_id=user_id, data=body)


@users_router.post("/{user_id}/password-reset", status_code=200, response_model=UserWithPassword,
                   responses=problem_responses(404))
async def reset_password(user_id: uuid.UUID, actor: UsersAdmin, session: SessionDep) -> UserWithPassword:
    """Give an account a new one-time password; its existing tokens stop working."""
    return await service.reset_password(session, actor=actor, user_id=user_id)


@clients_router.post("", status_code=201, response_model=ClientWithSecret, responses=problem_responses(422))
async def create_client(body: ClientCreate, actor: ClientsAdmin, session: SessionDep,
                        settings: SettingsDep) -> ClientWithSecret:
    """Register a machine client; the response carries its secret, shown once."""
    return await service.create_client(session, actor=actor, data=body, callback_allowlist=settings.callback_allowlist)


@clients_router.get("", status_code=200, response_model=Page[ClientRead], responses=problem_responses(422))
async def list_clients(actor: ClientsAdmin, session: SessionDep, page: PageDep) -> Page[ClientRead]:
    """List machine clients in creation order."""
    return await service.list_clients(session, actor=actor, params=page)


@clients_router.get("/{client_id}", status_code=200, response_model=ClientRead, responses=problem_responses(404))
async def get_client(client_id: uuid.UUID, actor: ClientsAdmin, session: SessionDep) -> ClientRead:
    """Read one machine client."""
    return await service.get_client(session, actor=actor, client_id=client_id)


@clients_router.post("/{client_id}/rotate", status_code=200, response_model=ClientWithSecret,
                     responses=problem_responses(404, 409))
async def rotate_client(client_id: uuid.UUID, actor: ClientsAdmin, session: SessionDep) -> ClientWithSecret:
    """Replace a client's secret; the old secret and its tokens stop working."""
    return await service.rotate_client(session, actor=actor, client_id=client_id)


@clients_router.post("/{client_id}/revoke", status_code=200, response_model=ClientRead, responses=problem_responses(404))
async def revoke_client(client_id: uuid.UUID, actor: ClientsAdmin, session: SessionDep) -> ClientRead:
    """Revoke a client for good; its tokens stop working at once."""
    return await service.revoke_client(session, actor=actor, client_id=client_id)

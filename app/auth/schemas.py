"""Request and response bodies of the auth, users and clients endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from app.auth.roles import Role
from app.core.schemas import RequestModel, ResponseModel
from app.core.types import Name, line

PASSWORD_MIN_LENGTH = 12

StaffRole = Literal["controller", "staff", "auditor", "viewer"]
ClientRole = Literal["integration", "automation", "viewer"]
SystemName = line(64, pattern=r"^[a-z][a-z0-9_-]{0,63}$")


Password = line(1024)
NewPassword = line(1024, min_length=PASSWORD_MIN_LENGTH)
CallbackUrl = line(500)


class TokenResponse(ResponseModel):
    """An OAuth2 access token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    scope: str


class Me(ResponseModel):
    """The caller as the token and the database see it."""

    kind: Literal["user", "client"]
    id: uuid.UUID
    name: str
    email: str | None = Field(default=None, description="A named person's email (none for machine clients)")
    role: Role
    scopes: list[str]
    system: str | None = Field(default=None, description="The external system a machine client speaks for")


class PasswordChange(RequestModel):
    """Choose a new password (with the current or one-time password)."""

    current_password: Password
    new_password: NewPassword


class UserCreate(RequestModel):
    """A new named person."""

    email: EmailStr
    full_name: Name
    role: StaffRole


class UserUpdate(RequestModel):
    """Changes to an account; only the fields sent are changed."""

    full_name: Name | None = None
    role: StaffRole | None = None
    active: bool | None = None


class UserRead(ResponseModel):
    """A named person's account (never its password hash)."""

    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    active: bool
    must_change_password: bool
    created_at: datetime
    updated_at: datetime


class UserWithPassword(UserRead):
    """An account with the one-time password to hand over; shown once."""

    one_time_password: str


class ClientCreate(RequestModel):
    """A new machine client."""

    name: Name
    role: ClientRole
    system: SystemName = Field(description="The external system the client speaks for, e.g. `booking`")
    callback_url: CallbackUrl | None = Field(
        default=None, description="Where signed event notices (GDPR Art. 19) are posted: https, or an allowlisted host")


class ClientRead(ResponseModel):
    """A machine client (never its secret)."""

    id: uuid.UUID
    name: str
    role: Role
    system: str
    callback_url: str | None = None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ClientWithSecret(ClientRead):
    """A client with its secret; shown once, at creation and rotation."""

    client_id: uuid.UUID
    client_secret: str
    callback_secret: str | None = Field(
        default=None, description="Checks the `X-Rekisteri-Signature` of event notices; shown once")

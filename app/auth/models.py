"""Named persons (staff accounts), machine clients and the login throttle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin


class UserAccount(IdMixin, TimestampMixin, Base):
    """A named person who may use the register (the controller or someone it designates)."""

    __tablename__ = "user_account"

    # Stored lower-cased, so the plain unique constraint makes it unique case-insensitively.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    # When access ended: the staff_accounts period is counted from it, then the account is anonymised.
    deactivated_at: Mapped[datetime | None]
    password_hash: Mapped[str] = mapped_column(String(255))
    # A one-time password is set: the only thing its holder may do is choose a new password.
    must_change_password: Mapped[bool] = mapped_column(default=True)
    # Bumped on deactivation and password changes; tokens carry it, so older ones stop working.
    token_generation: Mapped[int] = mapped_column(default=1)
    password_changed_at: Mapped[datetime | None]


class ApiClient(IdMixin, TimestampMixin, Base):
    """A machine client (booking or web-shop integration, access-request automation)."""

    __tablename__ = "api_client"

    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    system: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None]
    token_generation: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[str | None] = mapped_column(String(64))
    # Where the client takes signed event notices (Art. 19 for integrations), and the key they are signed
    # with: a delivery credential the receiver checks signatures with, so it is kept to sign, not hashed.
    callback_url: Mapped[str | None] = mapped_column(String(500))
    callback_secret: Mapped[str | None] = mapped_column(String(128))


class LoginThrottle(Base):
    """Failed logins per account key; lives in the database so every worker sees the same count."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]

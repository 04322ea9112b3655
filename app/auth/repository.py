"""Statements for accounts, clients and the login throttle; they flush, never commit."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiClient, LoginThrottle, UserAccount
from app.db.pagination import INSTANT, UUID, Keyset, PageParams
from app.db.repository import insert_ignoring_conflicts


async def user_by_email(session: AsyncSession, *, email: str) -> UserAccount | None:
    """The account with this email (emails are stored lower-cased)."""
    return (await session.execute(select(UserAccount).where(UserAccount.email == email.lower()))).scalar_one_or_none()


async def user_by_id(session: AsyncSession, *, user_id: uuid.UUID) -> UserAccount | None:
    """The account with this id."""
    return await session.get(UserAccount, user_id)


async def count_active_controllers(session: AsyncSession) -> int:
    """How many active controller accounts exist."""
    stmt = select(func.count()).where(UserAccount.role == "controller", UserAccount.active.is_(True))
    return (await session.execute(stmt)).scalar_one()


USERS_KEYSET = Keyset(((UserAccount.created_at, INSTANT), (UserAccount.id, UUID)))
CLIENTS_KEYSET = Keyset(((ApiClient.created_at, INSTANT), (ApiClient.id, UUID)))


async def _keyset_page(session: AsyncSession, model: type, keyset: Keyset, params: PageParams) -> list:
    stmt = select(model).order_by(model.created_at, model.id).limit(params.limit + 1)
    after = keyset.after(params)
    if after is not None:
        stmt = stmt.where(after)
    return list((await session.execute(stmt)).scalars())


async def list_users(session: AsyncSession, *, params: PageParams) -> list[UserAccount]:
    """A page of accounts in creation order."""
    return await _keyset_page(session, UserAccount, USERS_KEYSET, params)


async def list_clients(session: AsyncSession, *, params: PageParams) -> list[ApiClient]:
    """A page of clients in creation order."""
    return await _keyset_page(session, ApiClient, CLIENTS_KEYSET, params)


async def client_by_id(session: AsyncSession, *, client_id: uuid.UUID) -> ApiClient | None:
    """The client with this id."""
    return await session.get(ApiClient, client_id)


async def add(session: AsyncSession, obj: object) -> None:
    """Stage a new row and flush it."""
    session.add(obj)
    await session.flush()


async def lock_throttle(session: AsyncSession, *, key: str, now: datetime) -> LoginThrottle:
    """The throttle row of a login key, created if missing and locked against other workers."""
    await session.execute(
        insert_ignoring_conflicts(session, LoginThrottle.__table__, index_elements=["key"]).values(
            key=key, failures=0, window_started_at=now
        )
    )
    stmt = select(LoginThrottle).where(LoginThrottle.key == key).with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()


async def clear_throttle(session: AsyncSession, *, key: str) -> None:
    """Forget the failures of a login key after a success."""
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


async def clear_throttles(session: AsyncSession, *, prefix: str) -> None:
    """Forget the failures of every login key starting with `prefix` (an account at any address)."""
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key.startswith(prefix, autoescape=True)))

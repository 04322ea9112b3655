"""Benchmark baseline (b): the usual FastAPI + SQLAlchemy ORM way, as an integrator would write it themselves.

Verify the token (the same python-jose HS256 check), load the user with `session.get` (revocation), ORM-select the
registrant by email, answer through a pydantic model; no audit. Started by `bench/registrants_lookup.py`:

    .venv/bin/uvicorn --app-dir bench orm_app:app --port 8102   (REKISTERI_DATABASE_URL, REKISTERI_JWT_SECRET)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.auth.models import UserAccount
from app.core import security
from app.core.config import Settings
from app.db.session import async_url
from app.registrants.models import Registrant

settings = Settings()
engine = create_async_engine(async_url(settings.database_url), pool_size=settings.db_pool_size,
                             max_overflow=settings.db_pool_size)
sessions = async_sessionmaker(engine, expire_on_commit=False)
app = FastAPI()


class RegistrantOut(BaseModel):
    """The registrant as the reply shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    given_name: str | None
    family_name: str | None
    email: str | None
    phone: str | None
    language: str
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


class PageOut(BaseModel):
    """A page of registrants."""

    items: list[RegistrantOut]
    next_cursor: str | None = None


async def get_session() -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with sessions() as session:
        yield session


async def current_user(session: Annotated[AsyncSession, Depends(get_session)],
                       authorization: Annotated[str, Header()] = "") -> UserAccount:
    """The token's user, loaded from the database; 401 if the token is bad or the user gone."""
    _, _, token = authorization.partition(" ")
    try:
        claims = security.verify_token(settings, token)
    except security.TokenError as exc:
        raise HTTPException(401) from exc
    user = await session.get(UserAccount, uuid.UUID(claims.sub.partition(":")[2]))
    if user is None or not user.active:
        raise HTTPException(401)
    return user


@app.get("/v1/registrants", response_model=PageOut)
async def registrants(user: Annotated[UserAccount, Depends(current_user)],
                      session: Annotated[AsyncSession, Depends(get_session)], email: str = "") -> PageOut:
    """Registrants with this email."""
    rows = (await session.execute(select(Registrant).where(Registrant.email == email.lower()).limit(51))).scalars()
    return PageOut(items=[RegistrantOut.model_validate(r) for r in rows])

"""Benchmark anchor of `bench/upsert_reference.py`: an integration's upsert by external reference the usual FastAPI +
SQLAlchemy ORM way, as an integrator would write it themselves, without audit or history.

The engine, session and reply model are `bench/orm_app.py`'s. Verify the client's token (the same python-jose HS256
check), load the client with `session.get` (revocation), ORM-select the reference, then either add a new `Registrant` with its reference and customer types (201) or load the
registrant, set its fields, bump its version and replace its customer types (200); one commit; pydantic reply.

    .venv/bin/uvicorn --app-dir bench orm_upsert_app:app --port 8103   (REKISTERI_DATABASE_URL, REKISTERI_JWT_SECRET)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Response
from orm_app import RegistrantOut, get_session, settings
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiClient
from app.core import security
from app.registrants.models import Registrant, RegistrantCustomerType, RegistrantRef

app = FastAPI()
FIELDS = ("given_name", "family_name", "email", "phone", "language")


class RegistrantIn(BaseModel):
    """A registrant as the integration sends it."""

    kind: str
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str = "fi"
    customer_types: list[str] = []


async def current_client(session: Annotated[AsyncSession, Depends(get_session)],
                         authorization: Annotated[str, Header()] = "") -> ApiClient:
    """The token's client, loaded from the database; 401 if the token is bad or the client revoked."""
    _, _, token = authorization.partition(" ")
    try:
        claims = security.verify_token(settings, token)
    except security.TokenError as exc:
        raise HTTPException(401) from exc
    client = await session.get(ApiClient, uuid.UUID(claims.sub.partition(":")[2]))
    if client is None or client.revoked_at is not None:
        raise HTTPException(401)
    return client


@app.put("/v1/registrants/by-ref/{system}/{external_id}", response_model=RegistrantOut)
async def upsert(system: str, external_id: str, body: RegistrantIn, response: Response,
                 client: Annotated[ApiClient, Depends(current_client)],
                 session: Annotated[AsyncSession, Depends(get_session)]) -> RegistrantOut:
    """Create or replace the registrant this reference names."""
    if system != client.system:
        raise HTTPException(403)
    now = datetime.now(UTC)
    ref = (await session.execute(select(RegistrantRef).where(RegistrantRef.system == system,
                                                             RegistrantRef.external_id == external_id))).scalar()
    if ref is None:
        registrant = Registrant(kind=body.kind, status="active", version=1, created_by=f"client:{client.id}",
                                contact_persons=[], **{f: getattr(body, f) for f in FIELDS})
        session.add(registrant)
        await session.flush()
        session.add(RegistrantRef(registrant_id=registrant.id, system=system, external_id=external_id,
                                  created_at=now))
        response.status_code = 201
    else:
        registrant = await session.get(Registrant, ref.registrant_id)
        for field in FIELDS:
            setattr(registrant, field, getattr(body, field))
        registrant.version += 1
        await session.execute(delete(RegistrantCustomerType).where(
            RegistrantCustomerType.registrant_id == registrant.id))
    session.add_all(RegistrantCustomerType(registrant_id=registrant.id, customer_type=t)
                    for t in sorted(set(body.customer_types)))
    await session.commit()
    return RegistrantOut.model_validate(registrant)

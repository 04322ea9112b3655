"""Stored replies of retried requests in erasure (GDPR Art. 17): a reply that names the person goes."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.idempotency.models import IdempotencyKey
from app.registrants.erasure import ErasureContext, ErasureStep, Kept

IDEM = IdempotencyKey.__table__


async def _erase(session: AsyncSession, context: ErasureContext) -> list[Kept]:
    await session.execute(delete(IDEM).where(IDEM.c.response_body.contains(str(context.registrant_id))))
    return []


ERASURE = ErasureStep("stored replies", ("idempotency_key",), _erase)

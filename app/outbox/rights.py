"""The outbox's part in erasure (GDPR Art. 17): messages to the person not yet sent are cancelled, and no
message keeps their address or text."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.models import UNSENT, OutboxMessage
from app.outbox.models import Status as MessageStatus
from app.registrants.erasure import ErasureContext, ErasureStep, Kept

OUT = OutboxMessage.__table__


async def _erase(session: AsyncSession, context: ErasureContext) -> list[Kept]:
    mine = OUT.c.registrant_id == context.registrant_id
    await session.execute(update(OUT).where(mine, OUT.c.status.in_(UNSENT))
                          .values(status=MessageStatus.failed, last_error="cancelled: registrant erased"))
    await session.execute(update(OUT).where(mine).values(payload={}))
    return []


ERASURE = ErasureStep("outbox", ("outbox_message",), _erase)

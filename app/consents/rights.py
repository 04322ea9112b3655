"""The consent ledger's part in data-subject rights: its sections of the access package, and its erasure."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.consents import repository as repo
from app.consents.models import ConsentEvent, ConsentState
from app.registrants.erasure import ErasureContext, ErasureStep, Kept
from app.subject_requests.package import PackageSection
from app.subject_requests.texts import TEXTS

EV, ST = ConsentEvent.__table__, ConsentState.__table__
# Evidence fields that identify the person (or the guardian) rather than what was shown to them.
PERSONAL_EVIDENCE = ("client_addr", "user_agent", "guardian_name", "reference")


async def _events(session: AsyncSession, registrant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The consent ledger of a registrant, in effective order."""
    stmt = (select(EV.c.id, EV.c.purpose, EV.c.channel, EV.c.action, EV.c.source, EV.c.evidence, EV.c.given_by,
                   EV.c.effective_at, EV.c.recorded_at, EV.c.profile_version)
            .where(EV.c.registrant_id == registrant_id).order_by(EV.c.effective_at, EV.c.recorded_at, EV.c.id))
    return [dict(row) for row in (await session.execute(stmt)).mappings()]


async def _state(session: AsyncSession, registrant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The current consent state of a registrant."""
    return [dict(row) for row in await repo.states_of(session, registrant_id=registrant_id)]


async def _erase(session: AsyncSession, context: ErasureContext) -> list[Kept]:
    """The derived state goes; the ledger stays as proof, without contact data or evidence naming the person."""
    await session.execute(delete(ST).where(ST.c.registrant_id == context.registrant_id))
    events = (await session.execute(select(EV.c.id, EV.c.evidence)
                                    .where(EV.c.registrant_id == context.registrant_id))).all()
    for event in events:
        minimal = {k: v for k, v in (event.evidence or {}).items() if k not in PERSONAL_EVIDENCE}
        await session.execute(update(EV).where(EV.c.id == event.id).values(evidence=minimal, recorded_by_name=None))
    if not events:
        return []
    return [Kept(what="consent_event", count=len(events),
                 ground="GDPR Art. 7(1) and 17(3)(e): proof of what was consented or objected to, "
                        "without contact data or evidence identifying the person")]


SECTIONS = (PackageSection("consent_events", _events, title=TEXTS["sections"]["consent_events"]),
            PackageSection("consent_state", _state, title=TEXTS["sections"]["consent_state"], provided=False))
ERASURE = ErasureStep("consents", ("consent_event", "consent_state"), _erase)

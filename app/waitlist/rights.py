"""The waitlist's part in data-subject rights: its sections of the access package, and its erasure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.models import UNSENT, OutboxMessage
from app.outbox.models import Status as MessageStatus
from app.registrants.erasure import ErasureContext, ErasureStep, Kept
from app.subject_requests.package import PackageSection
from app.waitlist.models import WaitlistDelivery, WaitlistEntry, WaitlistEntryTag, WaitlistNotification

E, T, N, D = (WaitlistEntry.__table__, WaitlistEntryTag.__table__, WaitlistNotification.__table__,
              WaitlistDelivery.__table__)
OUT = OutboxMessage.__table__
_ENTRY_FIELDS = ("id", "given_name", "family_name", "guardian_id", "email", "phone", "by_email", "by_sms",
                 "cancellations", "enrolments", "status", "joined_at", "ended_at", "end_reason")


async def _entries(session: AsyncSession, registrant_id: Any) -> list[dict[str, Any]]:
    """The person's waitlist entries (never their unsubscribe tokens)."""
    stmt = select(*(E.c[name] for name in _ENTRY_FIELDS)).where(E.c.registrant_id == registrant_id).order_by(E.c.joined_at)
    return [dict(row) for row in (await session.execute(stmt)).mappings()]


async def _entries_as_guardian(session: AsyncSession, registrant_id: Any) -> list[dict[str, Any]]:
    """The children's entries whose notices go to this guardian's email and phone (guardian-held contact)."""
    stmt = (select(E.c.registrant_id.label("child_id"), *(E.c[name] for name in _ENTRY_FIELDS))
            .where(E.c.guardian_id == registrant_id).order_by(E.c.joined_at))
    return [dict(row) for row in (await session.execute(stmt)).mappings()]


async def _notices(session: AsyncSession, registrant_id: Any) -> list[dict[str, Any]]:
    """The slot notices sent to the person, with the slot and whether each was delivered."""
    stmt = (select(D.c.id, D.c.channel, D.c.wave, D.c.created_at, N.c.interest, N.c.message, N.c.slot_starts_at,
                   N.c.slot_description, OUT.c.status.label("delivery_status"), OUT.c.sent_at)
            .join(N, N.c.id == D.c.notification_id).outerjoin(OUT, OUT.c.id == D.c.id)
            .where(D.c.registrant_id == registrant_id).order_by(D.c.created_at))
    return [dict(row) for row in (await session.execute(stmt)).mappings()]


async def _erase(session: AsyncSession, context: ErasureContext) -> list[Kept]:
    """Entries, their tags and deliveries go; undelivered notices are cancelled."""
    entries = select(E.c.id).where(E.c.registrant_id == context.registrant_id)
    deliveries = select(D.c.id).where(D.c.entry_id.in_(entries))
    await session.execute(update(OUT).where(OUT.c.id.in_(deliveries), OUT.c.status.in_(UNSENT))
                          .values(status=MessageStatus.failed, last_error="cancelled: registrant erased", payload={}))
    await session.execute(delete(D).where(D.c.entry_id.in_(entries)))
    await session.execute(delete(T).where(T.c.entry_id.in_(entries)))
    await session.execute(delete(E).where(E.c.registrant_id == context.registrant_id))
    # An erased guardian's email and phone leave the children's entries, which stay (the child's own data) but can
    # no longer be notified until staff record who now acts for the child (the child is flagged for attention).
    await session.execute(update(E).where(E.c.guardian_id == context.registrant_id)
                          .values(guardian_id=None, email=None, phone=None))
    return []


SECTIONS = (PackageSection("waitlist_entries", _entries, title={"fi": "Odotuslista", "en": "Waitlist"}),
            PackageSection("waitlist_entries_as_guardian", _entries_as_guardian,
                           title={"fi": "Lasten odotuslistailmoittautumiset huoltajan yhteystiedoin",
                                  "en": "Children's waitlist entries with the guardian's contact details"},
                           provided=False),
            PackageSection("waitlist_notices", _notices, title={"fi": "Lähetetyt ilmoitukset vapaista ajoista",
                                                                "en": "Notices of free slots sent"}, provided=False))
ERASURE = ErasureStep("waitlist", ("waitlist_entry", "waitlist_entry_tag", "waitlist_delivery"), _erase)

"""Retention of the waitlist (UniikkiLista): an entry is kept its period from joining, or from leaving, as the
profile's `waitlist_entries` category says (GDPR Art. 5(1)(e), 13(2)(a))."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists

from app.register.retention import Hold, RuleRun, deleting_rule
from app.register.schemas import StartEvent
from app.waitlist.models import EntryStatus, WaitlistDelivery, WaitlistEntry, WaitlistEntryTag
from app.waitlist.repository import ENDED

E, TAG, D = WaitlistEntry.__table__, WaitlistEntryTag.__table__, WaitlistDelivery.__table__
_ACTIVE = E.alias("active_entry")
CATEGORY = "waitlist_entries"

# Contact details stay while the person waits on the list for a slot.
ACTIVE_ENTRY = Hold("an active waitlist entry", lambda registrant_id: exists().where(
    _ACTIVE.c.registrant_id == registrant_id, _ACTIVE.c.status == EntryStatus.active), frozenset({"contact_details"}))


def _past(run: RuleRun) -> ColumnElement[bool]:
    if run.start == StartEvent.leaving:
        return and_(E.c.status.in_(ENDED), E.c.ended_at < run.bound)
    return E.c.joined_at < run.bound


RULES = (deleting_rule(CATEGORY, E, _past, starts=(StartEvent.joining, StartEvent.leaving),
                       dependents=(TAG.c.entry_id, D.c.entry_id)),)
HOLDS = (ACTIVE_ENTRY,)

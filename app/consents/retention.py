"""Retention of the consent ledger: proof of a consent is kept its period after the consent ended (GDPR Art.
7(1), 5(1)(e)).

A purpose's events for one person go once nothing about it is in force (no grant, no objection) and its last
event, the withdrawal, is older than the period; for an erased person the erasure ended everything, so their
minimised proofs go the period after it.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_

from app.consents.models import ConsentEvent, ConsentState, OptOutUse
from app.consents.state import State
from app.register.retention import Hold, RuleRun, deleting_rule
from app.register.schemas import StartEvent
from app.registrants.models import Registrant, RegistrantStatus

EV, ST, USE, R = ConsentEvent.__table__, ConsentState.__table__, OptOutUse.__table__, Registrant.__table__
_LATER, _IN_FORCE = EV.alias("later"), ST.alias("in_force")
CATEGORY = "consents"

# Contact details stay while a consent is in force: the person asked to be contacted.
CONSENT_IN_FORCE = Hold("a consent in force", lambda registrant_id: exists().where(
    _IN_FORCE.c.registrant_id == registrant_id, _IN_FORCE.c.state == State.granted), frozenset({"contact_details"}))


def _ended(run: RuleRun) -> ColumnElement[bool]:
    """Events of a (person, purpose) whose consent or objection ended before the bound.

    It ends with its last event (a withdrawal), or, for a person no longer in the register (erased, or anonymised
    by retention), with their erasure if it was still in force then or its state was erased with them.
    """
    pair = and_(_IN_FORCE.c.registrant_id == EV.c.registrant_id, _IN_FORCE.c.purpose == EV.c.purpose)
    in_force = exists().where(pair, _IN_FORCE.c.state.in_((State.granted, State.objected)))
    no_state = ~exists().where(pair)
    gone = exists().where(R.c.id == EV.c.registrant_id, R.c.status == RegistrantStatus.erased)
    gone_lately = exists().where(R.c.id == EV.c.registrant_id, R.c.status == RegistrantStatus.erased,
                                 R.c.updated_at >= run.bound)
    later = exists().where(_LATER.c.registrant_id == EV.c.registrant_id, _LATER.c.purpose == EV.c.purpose,
                           or_(_LATER.c.recorded_at >= run.bound, _LATER.c.effective_at >= run.bound))
    return ~or_(and_(in_force, ~gone), later, and_(or_(in_force, no_state), gone_lately))


RULES = (deleting_rule(CATEGORY, EV, _ended, starts=(StartEvent.withdrawal,),
                       dependents=(ST.c.event_id, USE.c.event_id)),)
HOLDS = (CONSENT_IN_FORCE,)

"""Retention of the consent ledger: proof of a consent is kept its period after the consent ended (GDPR Art.
7(1), 5(1)(e)).

A purpose's events for one person go once nothing about it is in force (no grant, no objection) and its last
event, the withdrawal, is older than the period; for an erased person the erasure ended everything, so their
minimised proofs go the period after it.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.consents.models import ConsentEvent, ConsentState, OptOutUse
from app.consents.state import State
from app.register.retention import Action, Hold, RetentionRule, RuleRun, applicable, count_reasons, held, pick_ids
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


def _free(run: RuleRun) -> ColumnElement[bool]:
    return and_(_ended(run), ~held(run, CATEGORY, EV.c.registrant_id))


async def _count(session: AsyncSession, run: RuleRun) -> int:
    return (await session.execute(select(func.count()).select_from(EV).where(_free(run)))).scalar_one()


async def _delete(session: AsyncSession, run: RuleRun) -> int:
    ids = await pick_ids(session, run, EV.c.id, _free(run))
    if ids:
        await session.execute(delete(ST).where(ST.c.event_id.in_(ids)))
        await session.execute(delete(USE).where(USE.c.event_id.in_(ids)))
        await session.execute(delete(EV).where(EV.c.id.in_(ids)))
    return len(ids)


async def _skipped(session: AsyncSession, run: RuleRun) -> dict[str, int]:
    return await count_reasons(session, EV, _ended(run), applicable(run, CATEGORY, EV.c.registrant_id))


RULES = (RetentionRule(category=CATEGORY, table="consent_event", starts=(StartEvent.withdrawal,),
                       action=Action.delete, count=_count, act=_delete, skipped=_skipped,
                       also=("consent_state", "optout_use")),)
HOLDS = (CONSENT_IN_FORCE,)

"""Retention of data-subject requests: a closed request, its events, letters and frozen package are kept their
period after it closed (GDPR Art. 5(1)(e); Art. 5(2) and 12 accountability for how each request was answered).
An open request keeps the person's data in every other category until it is answered (Art. 12(3), 15)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.register.retention import Action, Hold, RetentionRule, RuleRun, pick_ids
from app.register.schemas import StartEvent
from app.registrants.models import Registrant, RegistrantStatus
from app.subject_requests.models import (
    SubjectRequest,
    SubjectRequestConfirmation,
    SubjectRequestEvent,
    SubjectRequestPackage,
)
from app.subject_requests.states import OPEN_STATUSES, RequestType

Q, EVT, PKG, CONF = (SubjectRequest.__table__, SubjectRequestEvent.__table__, SubjectRequestPackage.__table__,
                     SubjectRequestConfirmation.__table__)
R = Registrant.__table__
_OPEN = Q.alias("open_request")
CATEGORY = "subject_requests"

OPEN_REQUEST = Hold("an open data-subject request", lambda registrant_id: exists().where(
    _OPEN.c.registrant_id == registrant_id, _OPEN.c.status.in_(OPEN_STATUSES)))


def _closed(run: RuleRun) -> ColumnElement[bool]:
    # A restriction still in force needs its request: lifting it is a transition of that request (Art. 18(3)).
    restricting = and_(Q.c.type == RequestType.restriction, exists().where(
        R.c.id == Q.c.registrant_id, R.c.status == RegistrantStatus.restricted))
    return and_(Q.c.status.not_in(OPEN_STATUSES), func.coalesce(Q.c.completed_at, Q.c.updated_at) < run.bound,
                ~restricting)


async def _count(session: AsyncSession, run: RuleRun) -> int:
    return (await session.execute(select(func.count()).select_from(Q).where(_closed(run)))).scalar_one()


async def _delete(session: AsyncSession, run: RuleRun) -> int:
    ids = await pick_ids(session, run, Q.c.id, _closed(run))
    if ids:
        for table in (EVT, PKG, CONF):
            await session.execute(delete(table).where(table.c.request_id.in_(ids)))
        await session.execute(delete(Q).where(Q.c.id.in_(ids)))
    return len(ids)


# No example profile names this category; three years follows the general limitation period of claims
# (laki velan vanhentumisesta 728/2003 4 §), within which the controller may have to show how it answered.
RULES = (RetentionRule(category=CATEGORY, table="subject_request", starts=(StartEvent.completion,),
                       action=Action.delete, count=_count, act=_delete, default_retention="P3Y",
                       also=("subject_request_event", "subject_request_package", "subject_request_confirmation")),)
HOLDS = (OPEN_REQUEST,)

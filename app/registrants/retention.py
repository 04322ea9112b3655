"""Retention of the registrants domain: contact details and relationship records (GDPR Art. 5(1)(e)).

The customer relationship ends at the later of the person's last record (a sale, a lesson, an answer...) and the
end of their last contract or course (`ends_at`); contact details and relationship records are kept the
profile's period from then. Accounting material follows Kirjanpitolaki 1336/1997 2:10 §: vouchers (tositteet)
six years from the end of the year in which the financial period ended, the books (kirjanpito) ten years from
the end of the financial period; the profile may keep them longer, never shorter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.register.retention import (
    Action,
    Hold,
    RetentionRule,
    RuleRun,
    applicable,
    count_reasons,
    deleting_rule,
    held,
    pick_ids,
)
from app.register.schemas import StartEvent
from app.registrants import repository as registrants_repo
from app.registrants.models import (
    GuardianLink,
    Registrant,
    RegistrantCustomerType,
    RegistrantHistory,
    RegistrantRef,
    RegistrantStatus,
    RelationshipRecord,
)

R, REC = Registrant.__table__, RelationshipRecord.__table__
REF, CT, HIST = RegistrantRef.__table__, RegistrantCustomerType.__table__, RegistrantHistory.__table__
_LATER, _CONTRACT, _RESTRICTED, _CHILD = REC.alias("later"), REC.alias("contract"), R.alias("restricted"), R.alias("child")
GL = GuardianLink.__table__
PERSONAL_FIELDS = ("given_name", "family_name", "name", "business_id", "date_of_birth", "guardian", "email",
                   "phone", "address", "attention")
LEGAL_HOLD = "legal hold (GDPR Art. 17(3)(b))"

# A guardian's contact details serve their children while any child is still in the register (361/1983).
GUARDIAN = Hold("guardian of a child in the register", lambda registrant_id: exists().where(
    GL.c.guardian_id == registrant_id, GL.c.child_id == _CHILD.c.id, _CHILD.c.status != RegistrantStatus.erased),
    frozenset({"contact_details"}))

# GDPR Art. 18(1): restricted data may only be stored; the purge leaves it for staff to decide.
RESTRICTED = Hold("restriction (GDPR Art. 18)",
                  lambda registrant_id: exists().where(_RESTRICTED.c.id == registrant_id,
                                                       _RESTRICTED.c.status == RegistrantStatus.restricted))


def relationship_ongoing(run: RuleRun, registrant_id: Any) -> ColumnElement[bool]:
    """A record at or after the bound, or a contract running past it: the customer relationship has not ended.

    Two probes rather than one OR, so each can use the (registrant_id, occurred_at) index.
    """
    return or_(exists().where(_LATER.c.registrant_id == registrant_id, _LATER.c.occurred_at >= run.bound),
               exists().where(_CONTRACT.c.registrant_id == registrant_id, _CONTRACT.c.ends_at >= run.bound))


# Contact details: the person's row is blanked (records kept by law and consent proofs still point at it).

def _ended_registrants(run: RuleRun) -> list[ColumnElement[bool]]:
    return [R.c.status != RegistrantStatus.erased, R.c.created_at < run.bound, ~relationship_ongoing(run, R.c.id)]


async def _count_contacts(session: AsyncSession, run: RuleRun) -> int:
    stmt = select(func.count()).select_from(R).where(
        *_ended_registrants(run), ~held(run, "contact_details", R.c.id))
    return (await session.execute(stmt)).scalar_one()


async def _anonymise_contacts(session: AsyncSession, run: RuleRun) -> int:
    ids = await pick_ids(session, run, R.c.id, *_ended_registrants(run), ~held(run, "contact_details", R.c.id))
    if not ids:
        return 0
    # References go (not hashed, as on erasure): a later push of the same id is a new relationship.
    for table in (REF, CT, HIST):
        await session.execute(delete(table).where(table.c.registrant_id.in_(ids)))
    # An anonymised child's links go; so do a guardian's links to children no longer in the register.
    children = set((await session.execute(select(GL.c.child_id).where(GL.c.guardian_id.in_(ids)))).scalars())
    for side in (GL.c.child_id, GL.c.guardian_id):  # one id list per statement keeps within the bind limits
        await session.execute(delete(GL).where(side.in_(ids)))
    await session.execute(update(R).where(R.c.id.in_(ids)).values(
        **dict.fromkeys(PERSONAL_FIELDS), contact_persons=[], status=RegistrantStatus.erased,
        version=R.c.version + 1, updated_at=run.now))
    await registrants_repo.refresh_guardian_contact(session, child_ids=children - set(ids))
    return len(ids)


async def _skipped_contacts(session: AsyncSession, run: RuleRun) -> dict[str, int]:
    return await count_reasons(session, R, and_(*_ended_registrants(run)), applicable(run, "contact_details", R.c.id))


CONTACT_DETAILS = RetentionRule(
    category="contact_details", table="registrant", starts=(StartEvent.relationship_end,), action=Action.anonymise,
    count=_count_contacts, act=_anonymise_contacts, skipped=_skipped_contacts,
    also=("registrant_ref", "registrant_customer_type", "registrant_history", "guardian_link"))


# Relationship records, one rule per data category they are kept under.

def _past(category: str, start: StartEvent, run: RuleRun) -> ColumnElement[bool]:
    """Records of the category whose start event lies before the bound."""
    mine = REC.c.data_category == category
    if start == StartEvent.relationship_end:
        return and_(mine, REC.c.occurred_at < run.bound, ~relationship_ongoing(run, REC.c.registrant_id))
    if start == StartEvent.course_end:
        return and_(mine, func.coalesce(REC.c.ends_at, REC.c.occurred_at) < run.bound)
    return and_(mine, REC.c.occurred_at < run.bound)


def _records_rule(category: str, *starts: StartEvent, statutory: str | None = None) -> RetentionRule:
    """A rule for the records kept under one category; a statute's own rule is not stopped by its legal hold."""
    kept = [] if statutory else [(LEGAL_HOLD, REC.c.legal_hold.is_not(None))]
    return deleting_rule(category, REC, lambda run: _past(category, run.start, run), starts=starts, kept=kept,
                         legal_minimum=statutory)


RULES = (
    CONTACT_DETAILS,
    _records_rule("customer_relationship", StartEvent.relationship_end),
    _records_rule("course_content", StartEvent.course_end),
    _records_rule("identification_usage", StartEvent.last_use),
    _records_rule("survey_answers", StartEvent.collected),
    _records_rule("web_behaviour", StartEvent.collected),
    _records_rule("profiling_segments", StartEvent.collected),
    # Kirjanpitolaki 1336/1997 2:10 §.
    _records_rule("accounting_vouchers", StartEvent.financial_year_end, statutory="P6Y"),
    _records_rule("accounting_books", StartEvent.financial_period_end, statutory="P10Y"),
)
HOLDS = (RESTRICTED, GUARDIAN)

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

from app.db.repository import among
from app.register.retention import (
    Action,
    Hold,
    RetentionRule,
    RuleRun,
    applicable,
    deleting_rule,
    held,
    pick_ids,
    tally_rows,
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


async def _tally_contacts(session: AsyncSession, run: RuleRun) -> tuple[int, dict[str, int]]:
    return await tally_rows(session, R, and_(*_ended_registrants(run)), ~held(run, "contact_details", R.c.id),
                            applicable(run, "contact_details", R.c.id))


async def _count_contacts(session: AsyncSession, run: RuleRun) -> int:
    return (await _tally_contacts(session, run))[0]


async def _anonymise_contacts(session: AsyncSession, run: RuleRun) -> int:
    ids = await pick_ids(session, run, R.c.id, *_ended_registrants(run), ~held(run, "contact_details", R.c.id))
    if not ids:
        return 0
    # References go (not hashed, as on erasure): a later push of the same id is a new relationship.
    for table in (REF, CT, HIST):
        await session.execute(delete(table).where(among(session, table.c.registrant_id, ids)))
    # An anonymised child's links go; so do a guardian's links to children no longer in the register.
    children = set((await session.execute(select(GL.c.child_id).where(among(session, GL.c.guardian_id, ids))))
                   .scalars())
    for side in (GL.c.child_id, GL.c.guardian_id):  # one id list per statement keeps within SQLite's bind limits
        await session.execute(delete(GL).where(among(session, side, ids)))
    await session.execute(update(R).where(among(session, R.c.id, ids)).values(
        **dict.fromkeys(PERSONAL_FIELDS), contact_persons=[], status=RegistrantStatus.erased,
        version=R.c.version + 1, updated_at=run.now))
    await registrants_repo.refresh_guardian_contact(session, child_ids=children - set(ids))
    return len(ids)


async def _skipped_contacts(session: AsyncSession, run: RuleRun) -> dict[str, int]:
    return (await _tally_contacts(session, run))[1]


CONTACT_DETAILS = RetentionRule(
    category="contact_details", table="registrant", starts=(StartEvent.relationship_end,), action=Action.anonymise,
    count=_count_contacts, act=_anonymise_contacts, skipped=_skipped_contacts, tally=_tally_contacts,
    also=("registrant_ref", "registrant_customer_type", "registrant_history", "guardian_link"))


# Relationship records, one rule per data category they are kept under.

def _past(category: str, start: StartEvent, run: RuleRun) -> ColumnElement[bool]:
    """Records of the category whose start event lies before the bound (for the relationship's end: each record
    before it, and `_ended` asks that the relationship has ended)."""
    mine = REC.c.data_category == category
    if start == StartEvent.course_end:
        return and_(mine, func.coalesce(REC.c.ends_at, REC.c.occurred_at) < run.bound)
    return and_(mine, REC.c.occurred_at < run.bound)


def _ended(run: RuleRun) -> ColumnElement[bool] | None:
    """For records kept from the end of the customer relationship: it has ended, asked of a person's records taken
    together (the later of the last record and the end of the last contract is before the bound); this is
    `relationship_ongoing` turned round, as one pass over the person's records rather than two probes."""
    if run.start != StartEvent.relationship_end:
        return None
    return and_(func.max(REC.c.occurred_at) < run.bound,
                or_(func.max(REC.c.ends_at).is_(None), func.max(REC.c.ends_at) < run.bound))


def _records_rule(category: str, *starts: StartEvent, statutory: str | None = None) -> RetentionRule:
    """A rule for the records kept under one category; a statute's own rule is not stopped by its legal hold."""
    kept = [] if statutory else [(LEGAL_HOLD, REC.c.legal_hold.is_not(None))]
    return deleting_rule(category, REC, lambda run: _past(category, run.start, run), starts=starts, kept=kept,
                         legal_minimum=statutory, ended=_ended)


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

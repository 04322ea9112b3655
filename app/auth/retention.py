"""Retention of the auth domain's personal data: staff accounts and login throttles (GDPR Art. 5(1)(e))."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import LoginThrottle, UserAccount
from app.core import clock
from app.register.retention import Action, RetentionRule, RuleRun
from app.register.schemas import StartEvent

U, T = UserAccount.__table__, LoginThrottle.__table__
FORMER = "(former staff member)"


def _ended_accounts(run: RuleRun) -> list:
    # Anonymised accounts keep their id: the audit log and the history name who did what by it.
    return [U.c.active.is_(False), U.c.deactivated_at < run.bound, U.c.full_name != FORMER]


async def _count_accounts(session: AsyncSession, run: RuleRun) -> int:
    return (await session.execute(select(func.count()).select_from(U).where(*_ended_accounts(run)))).scalar_one()


async def _anonymise_accounts(session: AsyncSession, run: RuleRun) -> int:
    ids = list((await session.execute(select(U.c.id).where(*_ended_accounts(run)).limit(run.batch))).scalars())
    for account_id in ids:
        await session.execute(update(U).where(U.c.id == account_id).values(
            email=f"former-{account_id.hex}@invalid", full_name=FORMER, password_hash="!", updated_at=run.now))
    return len(ids)


def _stale_throttle(run: RuleRun) -> list:
    # A lock still running is kept even if its window started long ago.
    return [T.c.window_started_at < run.bound, T.c.locked_until.is_(None) | (T.c.locked_until < clock.utcnow())]


async def _count_throttle(session: AsyncSession, run: RuleRun) -> int:
    return (await session.execute(select(func.count()).select_from(T).where(*_stale_throttle(run)))).scalar_one()


async def _delete_throttle(session: AsyncSession, run: RuleRun) -> int:
    keys = select(T.c.key).where(*_stale_throttle(run)).limit(run.batch).scalar_subquery()
    return (await session.execute(delete(T).where(T.c.key.in_(keys)))).rowcount or 0


RULES = (
    RetentionRule(category="staff_accounts", table="user_account", starts=(StartEvent.deactivation,),
                  action=Action.anonymise, count=_count_accounts, act=_anonymise_accounts),
    RetentionRule(category="login_attempts", table="login_throttle", starts=(StartEvent.collected,),
                  action=Action.delete, count=_count_throttle, act=_delete_throttle, default_retention="P1D"),
)

"""Retention of the auth domain's personal data: login throttles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import LoginThrottle
from app.core import clock
from app.register.retention import RetentionRule


async def _count_throttle(session: AsyncSession, cutoff: datetime) -> int:
    stmt = select(func.count()).select_from(LoginThrottle).where(*_stale_throttle(cutoff))
    return (await session.execute(stmt)).scalar_one()


async def _delete_throttle(session: AsyncSession, cutoff: datetime) -> int:
    return (await session.execute(delete(LoginThrottle).where(*_stale_throttle(cutoff)))).rowcount


def _stale_throttle(cutoff: datetime) -> list:
    # A lock still running is kept even if its window started long ago.
    return [LoginThrottle.window_started_at < cutoff,
            LoginThrottle.locked_until.is_(None) | (LoginThrottle.locked_until < clock.utcnow())]


RULES = (RetentionRule(category="login_attempts", table="login_throttle", count=_count_throttle,
                       delete=_delete_throttle, default_retention="P1D"),)

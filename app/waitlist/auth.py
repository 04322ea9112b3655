"""The role requirements of the waitlist endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth.deps import require
from app.auth.principal import Principal
from app.auth.roles import Scope

WaitlistReader = Annotated[Principal, Depends(require(Scope.waitlist_read))]
WaitlistWriter = Annotated[Principal, Depends(require(Scope.waitlist_write))]
StatsReader = Annotated[Principal, Depends(require(Scope.stats_read))]

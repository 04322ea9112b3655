"""The role requirements of the registrants endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth.deps import require
from app.auth.principal import Principal
from app.auth.roles import Scope

RegistrantsReader = Annotated[Principal, Depends(require(Scope.registrants_read))]
RegistrantsWriter = Annotated[Principal, Depends(require(Scope.registrants_write))]
StatsReader = Annotated[Principal, Depends(require(Scope.stats_read))]

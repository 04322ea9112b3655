"""The role requirements of the data-subject request endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth.deps import require
from app.auth.principal import Principal
from app.auth.roles import Scope

RequestsReader = Annotated[Principal, Depends(require(Scope.requests_read))]
RequestsWriter = Annotated[Principal, Depends(require(Scope.requests_write))]
ExportsReader = Annotated[Principal, Depends(require(Scope.exports_read))]
StatsReader = Annotated[Principal, Depends(require(Scope.stats_read))]

"""Who may read and change the register profile and its record of processing."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth.deps import require
from app.auth.principal import Principal
from app.auth.roles import Scope

RegisterReader = Annotated[Principal, Depends(require(Scope.register_read))]
RegisterWriter = Annotated[Principal, Depends(require(Scope.register_write))]
# The record of processing is kept for the supervisory authority: the controller and auditors read it.
RopaReader = Annotated[Principal, Depends(require(Scope.audit_read))]

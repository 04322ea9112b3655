"""Who is calling: a staff account, a machine client, or nobody yet."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.auth.roles import Role, Scope


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request, as the services see it."""

    kind: str  # "user" | "client" | "anonymous" | "system"
    id: uuid.UUID | None
    name: str | None
    role: Role | None
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    # For machine clients: the external system it speaks for (e.g. "booking").
    system: str | None = None

    @property
    def subject(self) -> str:
        """The token `sub` of this principal."""
        return f"{self.kind}:{self.id}"

    def has(self, scope: Scope) -> bool:
        """Whether the token carries the scope."""
        return scope in self.scopes


ANONYMOUS = Principal(kind="anonymous", id=None, name=None, role=None)
SYSTEM = Principal(kind="system", id=None, name="rekisteri", role=None)

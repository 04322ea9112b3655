"""Who is calling: a staff account, a machine client, or nobody yet."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from app.auth.roles import Role, Scope


class PrincipalKind(StrEnum):
    """Who acts: a staff account, a machine client, nobody yet, the service itself, a data-subject request, or the
    data subject themselves."""

    user = "user"
    client = "client"
    anonymous = "anonymous"
    system = "system"
    # Changes a completed request makes (rectification) name the request as their author.
    request = "request"
    # The data subject, acting through a link sent to a known contact (confirming their own request).
    registrant = "registrant"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request, as the services see it."""

    kind: PrincipalKind
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


ANONYMOUS = Principal(kind=PrincipalKind.anonymous, id=None, name=None, role=None)
SYSTEM = Principal(kind=PrincipalKind.system, id=None, name="rekisteri", role=None)

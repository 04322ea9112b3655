"""GDPR Art. 16: apply the approved changes of a rectification request, through the normal validation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal, PrincipalKind
from app.core.errors import Invalid
from app.core.phone import normalise_phone
from app.registrants import service
from app.registrants.schemas import RegistrantUpdate

RECTIFIABLE = frozenset(service.EDITABLE_FIELDS)


@dataclass(frozen=True)
class Change:
    """One change a request asks for: the field, the value the person saw, the value they want."""

    field: str
    current_value: Any
    corrected_value: Any


@dataclass(frozen=True)
class Decision:
    """Staff's decision on one change."""

    approve: bool
    reason: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one change."""

    field: str
    outcome: Literal["applied", "rejected", "stale"]
    reason: str | None = None


def check_fields(changes: list[Change], *, loc: list[str | int]) -> None:
    """422 naming the first change whose field cannot be rectified through this service."""
    for index, change in enumerate(changes):
        if change.field not in RECTIFIABLE:
            raise Invalid(f"{change.field!r} is not a field of the registrant that can be rectified "
                          f"(one of: {', '.join(sorted(RECTIFIABLE))})", loc=[*loc, index, "field"])


def _same(field: str, stored: Any, seen: Any) -> bool:
    stored = service.jsonable(stored)
    if field == "phone" and stored and seen:
        try:
            return normalise_phone(str(seen)) == stored
        except ValueError:
            return False
    if isinstance(stored, str) and isinstance(seen, str):
        return stored.casefold() == seen.strip().casefold() if field == "email" else stored == seen.strip()
    return stored == seen


async def rectify(
    session: AsyncSession,
    *,
    actor: Principal,
    registrant_id: uuid.UUID,
    request_id: uuid.UUID,
    changes: list[Change],
    decisions: list[Decision],
    loc: list[str | int],
) -> list[Outcome]:
    """Apply the approved changes in one update (history names the request); report stale and rejected ones."""
    check_fields(changes, loc=loc)
    if len(decisions) != len(changes):
        raise Invalid(f"decide each of the {len(changes)} requested changes", loc=[*loc])
    row = await service.visible_registrant(session, actor=actor, registrant_id=registrant_id, for_update=True)
    outcomes: list[Outcome] = []
    updates: dict[str, Any] = {}
    for index, (change, decision) in enumerate(zip(changes, decisions, strict=True)):
        if not decision.approve:
            if not decision.reason:
                raise Invalid("a rejected change needs a reason", loc=[*loc, index, "reason"])
            outcomes.append(Outcome(change.field, "rejected", decision.reason))
        elif not _same(change.field, row[change.field], change.current_value):
            # The data moved on since the person wrote: applying blindly would overwrite someone's later fix.
            outcomes.append(Outcome(change.field, "stale", "the current value is no longer the one the request names"))
        else:
            updates[change.field] = change.corrected_value
            outcomes.append(Outcome(change.field, "applied"))
    if updates:
        try:
            validated = RegistrantUpdate.model_validate(updates).model_dump(exclude_unset=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "?"
            index = next(i for i, c in enumerate(changes) if c.field == field)
            raise Invalid(f"the corrected {field} is not valid: {error['msg']}",
                          loc=[*loc, index, "corrected_value"]) from exc
        by_request = Principal(kind=PrincipalKind.request, id=request_id, name=f"data-subject request {request_id}",
                               role=None)
        await service.apply_changes(session, actor=by_request, row=row, changes=validated, expected=None)
    return outcomes

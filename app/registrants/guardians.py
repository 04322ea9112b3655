"""Children and their guardians, each a registrant of their own; age computed on the day a rule runs.

The law behind it:
- Laki lapsen huollosta ja tapaamisoikeudesta (361/1983) §§ 3-4: a guardian (huoltaja) represents a child under 18
  in matters of the child's person; so a guardian is a person of full age (18) and a child has guardians until 18.
- GDPR Art. 8 and Tietosuojalaki (1050/2018) § 5: under the profile's guardian age (13 in Finland) a child does
  not consent alone to information-society services; a linked guardian gives or authorises the consent.
- Age is never stored as a number: it is computed from the date of birth (or an estimate marked as such) on the
  day a rule runs (`app.core.clock`), so a stale age never decides.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock
from app.core.errors import Invalid
from app.register import service as register
from app.registrants import repository as repo
from app.registrants.models import RegistrantKind, RegistrantStatus

MAJORITY = 18


def age_on(born: date, today: date) -> int:
    """Full years from a date of birth to a day."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def age_today(born: date | None) -> int | None:
    """Full years on the clock's today; None without a date of birth."""
    return None if born is None else age_on(born, clock.utcnow().date())


def estimated_birth_date(age: int, today: date) -> date:
    """The latest date of birth of someone `age` years old today: an estimate that keeps the guardian rule longest."""
    year = today.year - age
    born = today.replace(year=year, day=28) if (today.month, today.day) == (2, 29) else today.replace(year=year)
    return born


async def needs_guardian(session: AsyncSession, born: date | None) -> bool:
    """Whether a person born on that day is under the profile's guardian age today (no date: not known to be)."""
    age = age_today(born)
    return age is not None and age < await register.guardian_age(session)


def links(value: Any) -> list[dict[str, Any]]:
    """The guardian links a registrant row carries as JSON, with their times timezone-aware."""
    out = []
    for link in value or []:
        linked_at = link["linked_at"]
        if isinstance(linked_at, str):
            linked_at = datetime.fromisoformat(linked_at)
        if linked_at.tzinfo is None:
            linked_at = linked_at.replace(tzinfo=UTC)
        out.append({**link, "registrant_id": uuid.UUID(str(link["registrant_id"])), "linked_at": linked_at})
    return sorted(out, key=lambda link: (link["linked_at"], link["registrant_id"]))


def check_child(*, kind: str, born: date | None, loc: list[str | int]) -> None:
    """Only a person under 18 with a date of birth (or an estimate) has guardians."""
    if kind != RegistrantKind.person:
        raise Invalid("only a person has guardians", loc=loc)
    if born is None:
        raise Invalid("a child with guardians needs a date of birth (or an estimate from the age)",
                      loc=[*loc[:-1], "date_of_birth"])
    if (age_today(born) or 0) >= MAJORITY:
        raise Invalid(f"a person of {MAJORITY} or more has no guardian", loc=loc)


async def check_guardian(session: AsyncSession, *, child_id: uuid.UUID | None, guardian_id: uuid.UUID,
                         visibility: repo.Visibility, loc: list[str | int]) -> None:
    """A guardian is another active person the caller sees, of full age, and not among the child's descendants."""
    if child_id is not None and guardian_id == child_id:
        raise Invalid("a person cannot be their own guardian", loc=loc)
    row = await repo.get(session, registrant_id=guardian_id, visibility=visibility)
    if row is None or row["status"] != RegistrantStatus.active:
        raise Invalid(f"no active registrant {guardian_id} to link as a guardian", loc=loc)
    if row["kind"] != RegistrantKind.person:
        raise Invalid("a guardian is a person, not an organisation", loc=loc)
    age = age_today(row["date_of_birth"])
    if age is not None and age < MAJORITY:
        raise Invalid(f"a guardian must be {MAJORITY} or older (this one is {age})", loc=loc)
    if child_id is not None and guardian_id in await repo.descendants(session, registrant_id=child_id):
        raise Invalid("the guardian is already the child's ward: links may not form a loop", loc=loc)


async def link(session: AsyncSession, *, actor: Principal, child_id: uuid.UUID, guardian_id: uuid.UUID,
               source: str) -> bool:
    """Insert a checked link (and refresh the child's derived guardian contact); False when it already existed."""
    made = await repo.insert_link(session, values={
        "child_id": child_id, "guardian_id": guardian_id, "source": source, "linked_at": clock.utcnow(),
        "linked_by": actor.subject})
    if made:
        await repo.refresh_guardian_contact(session, child_ids=[child_id])
    return made


OF_AGE_ACTOR = "children of-age job"
OF_AGE_ATTENTION = ("reached the guardian age: ask them to renew the consents their guardian gave "
                    "(GDPR Art. 8; 1050/2018 § 5)")


async def flag_of_age(session: AsyncSession) -> int:
    """Flag for staff every child who reached the profile's guardian age and still has a consent a guardian gave,
    once per child (the history entry marks it); returns how many were flagged, never who."""
    from app.consents.models import ConsentEvent, ConsentState  # noqa: PLC0415 - the consents ledger's tables
    from app.consents.state import State  # noqa: PLC0415

    today = clock.utcnow().date()
    age = await register.guardian_age(session)
    cutoff = estimated_birth_date(age, today)  # born on or before: `age` or older today
    R, HIST = repo.R, repo.HIST
    ST, EV = ConsentState.__table__, ConsentEvent.__table__
    guardian_grant = exists().where(ST.c.registrant_id == R.c.id, ST.c.state == State.granted,
                                    EV.c.id == ST.c.event_id, EV.c.given_by == "guardian")
    flagged_before = exists().where(HIST.c.registrant_id == R.c.id, HIST.c.actor_name == OF_AGE_ACTOR)
    rows = (await session.execute(select(R.c.id, R.c.version, R.c.attention).where(
        R.c.status == RegistrantStatus.active, R.c.kind == RegistrantKind.person, R.c.date_of_birth <= cutoff,
        guardian_grant, ~flagged_before))).all()
    now = clock.utcnow()
    for row in rows:
        values: dict[str, Any] = {"version": row.version + 1, "updated_at": now}
        if row.attention is None:
            values["attention"] = OF_AGE_ATTENTION
        await session.execute(update(R).where(R.c.id == row.id).values(**values))
        await repo.add_history(session, values={
            "registrant_id": row.id, "version": row.version + 1, "at": now, "action": "update",
            "actor_type": "system", "actor_id": None, "actor_name": OF_AGE_ACTOR, "fields": ["attention"],
            "changes": {"attention": {"old": row.attention, "new": values.get("attention", row.attention)}}})
    return len(rows)

"""Statements on registrants, references, customer types, history and records; they never commit.

Reads use Core statements and narrow selects: the lookups are the hot path (see DESIGN.md).
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from dataclasses import dataclass
from datetime import datetime
from collections.abc import Hashable
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Select,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.chain import pending_insert

from app.db.pagination import INSTANT, INT32, UUID, Keyset, PageParams
from app.db.repository import dialect_name, insert_ignoring_conflicts
from app.registrants.models import (
    GuardianLink,
    Registrant,
    RegistrantCustomerType,
    RegistrantHistory,
    RegistrantKind,
    RegistrantRef,
    RegistrantStatus,
    RelationshipRecord,
)

R = Registrant.__table__
REF = RegistrantRef.__table__
CT = RegistrantCustomerType.__table__
HIST = RegistrantHistory.__table__
REC = RelationshipRecord.__table__
GL = GuardianLink.__table__


@dataclass(frozen=True)
class Visibility:
    """Whom a caller may see: everyone, or what its system references or it created."""

    system: str | None = None
    creator: str | None = None

    def clause(self) -> ColumnElement[bool] | None:
        """The WHERE condition on `registrant`, or None when everything is visible."""
        if self.system is None:
            return None
        own_ref = exists().where(REF.c.registrant_id == R.c.id, REF.c.system == self.system)
        return or_(R.c.created_by == self.creator, own_ref)


@dataclass(frozen=True)
class RegistrantFilter:
    """What to look for among registrants."""

    email: str | None = None
    phone: str | None = None
    ref: tuple[str, str] | None = None
    name: str | None = None
    kind: str | None = None
    statuses: tuple[RegistrantStatus, ...] = (RegistrantStatus.active,)
    customer_type: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    attention: bool | None = None


REGISTRANTS_KEYSET = Keyset(((R.c.created_at, INSTANT), (R.c.id, UUID)))
REGISTRANTS_ORDER = ("created_at", "id")
HISTORY_KEYSET = Keyset(((HIST.c.version, INT32), (HIST.c.id, UUID)))
RECORDS_KEYSET = Keyset(((REC.c.occurred_at, INSTANT), (REC.c.id, UUID)), descending=True)


def _extras(dialect: str) -> tuple[Any, ...]:
    """Correlated subqueries that bring a registrant's references, customer types and guardian links as JSON arrays."""
    if dialect == "postgresql":
        agg, obj = func.json_agg, func.json_build_object
    else:
        agg, obj = func.json_group_array, func.json_object
    refs = (select(agg(obj("system", REF.c.system, "id", REF.c.external_id)))
            .where(REF.c.registrant_id == R.c.id).scalar_subquery())
    types = select(agg(CT.c.customer_type)).where(CT.c.registrant_id == R.c.id).scalar_subquery()
    other = R.alias("linked")
    guardians = (select(agg(obj("registrant_id", GL.c.guardian_id, "source", GL.c.source, "linked_at", GL.c.linked_at,
                                "given_name", other.c.given_name, "family_name", other.c.family_name)))
                 .select_from(GL.join(other, other.c.id == GL.c.guardian_id))
                 .where(GL.c.child_id == R.c.id).scalar_subquery())
    children = (select(agg(obj("registrant_id", GL.c.child_id, "source", GL.c.source, "linked_at", GL.c.linked_at,
                               "given_name", other.c.given_name, "family_name", other.c.family_name)))
                .select_from(GL.join(other, other.c.id == GL.c.child_id))
                .where(GL.c.guardian_id == R.c.id).scalar_subquery())
    return (type_coerce(refs, JSON).label("refs_json"), type_coerce(types, JSON).label("types_json"),
            type_coerce(guardians, JSON).label("guardians_json"), type_coerce(children, JSON).label("children_json"))


@lru_cache
def _registrants(dialect: str) -> Select[Any]:
    """SELECT of registrant rows with their references and types, in one statement (one round trip).

    Built once per dialect: statements are immutable, and building the subqueries per request showed in profiles.
    """
    return select(R, *_extras(dialect))


def _conditions(filters: RegistrantFilter) -> list[ColumnElement[bool]]:
    f, conds = filters, [R.c.status.in_(filters.statuses)]
    if f.email is not None:
        conds.append(R.c.email == f.email.lower())
    if f.attention is not None:
        conds.append(R.c.attention.is_not(None) if f.attention else R.c.attention.is_(None))
    if f.phone is not None:
        conds.append(R.c.phone == f.phone)
    if f.ref is not None:
        conds.append(R.c.id.in_(select(REF.c.registrant_id).where(REF.c.system == f.ref[0],
                                                                  REF.c.external_id == f.ref[1])))
    if f.name is not None:
        prefix = f.name.lower()
        conds.append(or_(*(func.lower(col).startswith(prefix, autoescape=True)
                           for col in (R.c.family_name, R.c.given_name, R.c.name))))
    if f.kind is not None:
        conds.append(R.c.kind == f.kind)
    if f.customer_type is not None:
        conds.append(exists().where(CT.c.registrant_id == R.c.id, CT.c.customer_type == f.customer_type))
    for column, low, high in ((R.c.created_at, f.created_from, f.created_to),
                              (R.c.updated_at, f.updated_from, f.updated_to)):
        if low is not None:
            conds.append(column >= low)
        if high is not None:
            conds.append(column < high)
    return conds


def lookup_shape(*, filters: RegistrantFilter, visibility: Visibility, params: PageParams) -> Hashable | None:
    """The structure of a plain lookup (by email, phone and/or reference, first page), or None for any other query.

    A plain lookup's statement (`lookup_statement`) takes every value as a bind parameter (`lookup_params`), so it is
    built once per shape and reused, as the audited read path keeps its combined statement.
    """
    f = filters
    if params.after is not None or f.attention is not None or any(
            (f.name, f.kind, f.customer_type, f.created_from, f.created_to, f.updated_from, f.updated_to)):
        return None
    return ("lookup", f.email is not None, f.phone is not None, f.ref is not None, visibility.system is not None,
            params.limit)


def lookup_params(*, filters: RegistrantFilter, visibility: Visibility) -> dict[str, Any]:
    """The bind values of `lookup_statement`."""
    f = filters
    return {"f_statuses": list(f.statuses), "f_email": f.email.lower() if f.email is not None else None,
            "f_phone": f.phone, "f_ref_system": f.ref[0] if f.ref else None, "f_ref_id": f.ref[1] if f.ref else None,
            "v_system": visibility.system, "v_creator": visibility.creator}


@lru_cache(maxsize=64)
def lookup_statement(shape: Hashable, dialect: str) -> Select[Any]:
    """The SELECT of a plain lookup of this shape, its values left as bind parameters (see `lookup_params`)."""
    _, email, phone, ref, restricted, limit = shape  # type: ignore[misc]
    conds: list[ColumnElement[bool]] = [R.c.status.in_(bindparam("f_statuses", expanding=True))]
    if email:
        conds.append(R.c.email == bindparam("f_email"))
    if phone:
        conds.append(R.c.phone == bindparam("f_phone"))
    if ref:
        conds.append(R.c.id.in_(select(REF.c.registrant_id).where(REF.c.system == bindparam("f_ref_system"),
                                                                  REF.c.external_id == bindparam("f_ref_id"))))
    if restricted:
        conds.append(or_(R.c.created_by == bindparam("v_creator"),
                         exists().where(REF.c.registrant_id == R.c.id, REF.c.system == bindparam("v_system"))))
    return _registrants(dialect).where(*conds).order_by(R.c.created_at, R.c.id).limit(limit + 1)


async def get(session: AsyncSession, *, registrant_id: uuid.UUID, visibility: Visibility,
              for_update: bool = False, extras: bool = True) -> RowMapping | None:
    """The registrant row if the caller may see it (without `extras`, only its own columns: no references, types or
    links)."""
    stmt = (_registrants(dialect_name(session)) if extras else select(R)).where(R.c.id == registrant_id)
    clause = visibility.clause()
    if clause is not None:
        stmt = stmt.where(clause)
    if for_update:
        stmt = stmt.with_for_update(of=R)
    return (await session.execute(stmt)).mappings().one_or_none()


def find_statement(*, filters: RegistrantFilter, visibility: Visibility, params: PageParams,
                   dialect: str) -> Select[Any]:
    """The SELECT of a page of registrants in creation order (one row more than the limit)."""
    stmt = _registrants(dialect).where(*_conditions(filters)).order_by(R.c.created_at, R.c.id).limit(params.limit + 1)
    clause = visibility.clause()
    if clause is not None:
        stmt = stmt.where(clause)
    after = REGISTRANTS_KEYSET.after(params)
    if after is not None:
        stmt = stmt.where(after)
    return stmt


async def insert_registrant(session: AsyncSession, *, values: dict[str, Any]) -> None:
    """Insert a registrant row."""
    await session.execute(insert(R).values(**values))


async def update_versioned(session: AsyncSession, *, registrant_id: uuid.UUID, expected_version: int,
                           values: dict[str, Any]) -> bool:
    """Apply changes only if the version is still the expected one; the loser of a race gets False."""
    stmt = (update(R).where(R.c.id == registrant_id, R.c.version == expected_version)
            .values(**values, version=expected_version + 1))
    return (await session.execute(stmt)).rowcount == 1


async def claim_ref(session: AsyncSession, *, registrant_id: uuid.UUID, system: str, external_id: str,
                    now: datetime) -> bool:
    """Attach a reference unless (system, id) is taken; a racer waits for the owner to commit."""
    stmt = insert_ignoring_conflicts(session, REF, index_elements=["system", "external_id"]).values(
        id=uuid.uuid4(), registrant_id=registrant_id, system=system, external_id=external_id, created_at=now,
    ).returning(REF.c.id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def ref_owner(session: AsyncSession, *, system: str, external_id: str) -> uuid.UUID | None:
    """The registrant carrying a reference."""
    stmt = select(REF.c.registrant_id).where(REF.c.system == system, REF.c.external_id == external_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_customer_types(session: AsyncSession, *, registrant_id: uuid.UUID, types: list[str]) -> None:
    """Replace a registrant's customer types."""
    await session.execute(delete(CT).where(CT.c.registrant_id == registrant_id))
    await add_customer_types(session, registrant_id=registrant_id, types=types)


async def add_customer_types(session: AsyncSession, *, registrant_id: uuid.UUID, types: list[str]) -> None:
    """Give a new registrant its customer types."""
    if types:
        await session.execute(insert(CT), [{"registrant_id": registrant_id, "customer_type": t} for t in types])


async def add_history(session: AsyncSession, *, values: dict[str, Any]) -> None:
    """Insert a history entry."""
    await session.execute(insert(HIST).values(id=uuid.uuid4(), **values))


async def history(session: AsyncSession, *, registrant_id: uuid.UUID, params: PageParams) -> list[RowMapping]:
    """A page of a registrant's changes, oldest first."""
    stmt = (select(HIST).where(HIST.c.registrant_id == registrant_id)
            .order_by(HIST.c.version, HIST.c.id).limit(params.limit + 1))
    after = HISTORY_KEYSET.after(params)
    if after is not None:
        stmt = stmt.where(after)
    return list((await session.execute(stmt)).mappings())


async def insert_record(session: AsyncSession, *, values: dict[str, Any]) -> bool:
    """Insert a record unless its (source, external id) exists; False if it did."""
    stmt = (insert_ignoring_conflicts(session, REC, index_elements=["source", "external_id"])
            .values(**values).returning(REC.c.id))
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def record_by_id(session: AsyncSession, *, record_id: uuid.UUID) -> RowMapping | None:
    """One record."""
    return (await session.execute(select(REC).where(REC.c.id == record_id))).mappings().one_or_none()


async def record_by_external_id(session: AsyncSession, *, source: str, external_id: str) -> RowMapping | None:
    """The record a source created under an external id."""
    stmt = select(REC).where(REC.c.source == source, REC.c.external_id == external_id)
    return (await session.execute(stmt)).mappings().one_or_none()


async def records(session: AsyncSession, *, registrant_id: uuid.UUID, types: tuple[str, ...] | None,
                  since: datetime | None, until: datetime | None, source: str | None,
                  params: PageParams) -> list[RowMapping]:
    """A page of a registrant's records (only those one source wrote, when given), newest first."""
    stmt = (select(REC).where(REC.c.registrant_id == registrant_id)
            .order_by(REC.c.occurred_at.desc(), REC.c.id.desc()).limit(params.limit + 1))
    if source is not None:
        stmt = stmt.where(REC.c.source == source)
    if types:
        stmt = stmt.where(REC.c.type.in_(types))
    if since is not None:
        stmt = stmt.where(REC.c.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(REC.c.occurred_at < until)
    after = RECORDS_KEYSET.after(params)
    if after is not None:
        stmt = stmt.where(after)
    return list((await session.execute(stmt)).mappings())


async def counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Registrant counts by kind, by status and by customer type."""
    out: dict[str, dict[str, int]] = {}
    for name, column in (("kind", R.c.kind), ("status", R.c.status)):
        rows = await session.execute(select(column, func.count()).group_by(column))
        out[name] = {key: count for key, count in rows.all()}
    rows = await session.execute(select(CT.c.customer_type, func.count()).group_by(CT.c.customer_type))
    out["customer_type"] = {key: count for key, count in rows.all()}
    return out


# --- guardian links ---------------------------------------------------------------------------

async def insert_link(session: AsyncSession, *, values: dict[str, Any]) -> bool:
    """Link a guardian to a child; False when the link already exists."""
    stmt = insert_ignoring_conflicts(session, GL, index_elements=["child_id", "guardian_id"]).values(**values)
    return (await session.execute(stmt.returning(GL.c.child_id))).scalar_one_or_none() is not None


async def delete_link(session: AsyncSession, *, child_id: uuid.UUID, guardian_id: uuid.UUID) -> bool:
    """Remove one link; False when there was none."""
    result = await session.execute(delete(GL).where(GL.c.child_id == child_id, GL.c.guardian_id == guardian_id))
    return bool(result.rowcount)


async def guardian_ids(session: AsyncSession, *, child_id: uuid.UUID) -> list[uuid.UUID]:
    """The registrant ids of a child's guardians."""
    return list((await session.execute(select(GL.c.guardian_id).where(GL.c.child_id == child_id))).scalars())


async def child_ids(session: AsyncSession, *, guardian_id: uuid.UUID) -> list[uuid.UUID]:
    """The registrant ids of the children a guardian is linked to."""
    return list((await session.execute(select(GL.c.child_id).where(GL.c.guardian_id == guardian_id))).scalars())


async def descendants(session: AsyncSession, *, registrant_id: uuid.UUID, limit: int = 1000) -> set[uuid.UUID]:
    """Everyone a registrant is (transitively) a guardian of: what may not become its guardian (no loops)."""
    seen: set[uuid.UUID] = set()
    frontier = [registrant_id]
    while frontier and len(seen) < limit:
        rows = await session.execute(select(GL.c.child_id).where(GL.c.guardian_id.in_(frontier)))
        frontier = [c for c in rows.scalars() if c not in seen]
        seen.update(frontier)
    return seen


async def same_named_people(session: AsyncSession, *, given_name: str, family_name: str, email: str | None = None,
                            phone: str | None = None, guardian_id: uuid.UUID | None = None,
                            visibility: Visibility) -> list[RowMapping]:
    """Active persons with these names (case-insensitive) and, for an adult, this email or phone, or, for a child,
    this guardian: the candidates a join may be the same person as, earliest first."""
    conds = [R.c.status == RegistrantStatus.active, R.c.kind == RegistrantKind.person,
             func.lower(R.c.given_name) == given_name.lower(), func.lower(R.c.family_name) == family_name.lower()]
    if guardian_id is not None:
        conds.append(exists().where(GL.c.child_id == R.c.id, GL.c.guardian_id == guardian_id))
    else:
        contacts = [c for c in ((R.c.email == email) if email else None, (R.c.phone == phone) if phone else None)
                    if c is not None]
        if not contacts:
            return []
        conds.append(or_(*contacts))
    clause = visibility.clause()
    if clause is not None:
        conds.append(clause)
    stmt = (select(R.c.id, R.c.date_of_birth, R.c.birth_date_estimated).where(*conds)
            .order_by(R.c.created_at, R.c.id))
    return list((await session.execute(stmt)).mappings())


async def refresh_guardian_contact(session: AsyncSession, *, child_ids: list[uuid.UUID] | set[uuid.UUID]) -> None:
    """Rewrite each child's derived `guardian` contact from its links: the email of the first-linked active guardian
    with an email, the phone of the first with a phone (None without either); no version or history (derived)."""
    for child_id in child_ids:
        rows = (await session.execute(
            select(R.c.id, R.c.email, R.c.phone).select_from(GL.join(R, R.c.id == GL.c.guardian_id))
            .where(GL.c.child_id == child_id, R.c.status == RegistrantStatus.active)
            .order_by(GL.c.linked_at, GL.c.guardian_id))).all()
        email = next((r.email for r in rows if r.email), None)
        phone = next((r.phone for r in rows if r.phone), None)
        value = {"email": email, "phone": phone} if (email or phone) else None
        await session.execute(update(R).where(R.c.id == child_id).values(guardian=value))


# --- writes in one statement (PostgreSQL) -----------------------------------------------------
# Each write and the rows that go with it (reference, customer types, history, its audit entry) as one statement of
# data-modifying CTEs, built once and run with bound values: one round trip (see `audit.writing_connection`).

REGISTRANT_COLUMNS = ("kind", "given_name", "family_name", "name", "business_id", "date_of_birth",
                      "birth_date_estimated", "contact_persons", "email", "phone", "address", "language")
_TYPES = postgresql.ARRAY(CT.c.customer_type.type)
_REFS = postgresql.ARRAY(REF.c.external_id.type)
_HISTORY_COLUMNS = ("at", "action", "actor_type", "actor_id", "actor_name", "fields", "changes")


def _bound(table: Any, names: tuple[str, ...], prefix: str = "") -> list[Any]:
    return [bindparam(prefix + name, type_=table.c[name].type) for name in names]


@lru_cache
def by_ref_statement(dialect: str) -> Select[Any]:
    """The registrant an external reference (`ref_system`, `ref_id`) names, with its references, types and links.

    No visibility condition: an integration upserts only references of its own system, and what carries one is
    visible to it (`Visibility`); staff see everything.
    """
    owner = select(REF.c.registrant_id).where(REF.c.system == bindparam("ref_system"),
                                              REF.c.external_id == bindparam("ref_id")).scalar_subquery()
    return _registrants(dialect).where(R.c.id == owner)


def _history_insert(after: Any) -> Any:
    """The history entry of a write, for the row `after` returns (none when the write did not happen)."""
    source = select(bindparam("h_id", type_=HIST.c.id.type), after.c.id, bindparam("h_version", type_=Integer),
                    *_bound(HIST, _HISTORY_COLUMNS, "h_")).select_from(after)
    return insert(HIST).from_select(["id", "registrant_id", "version", *_HISTORY_COLUMNS], source)


def _types_insert(after: Any, name: str) -> Any:
    return insert(CT).from_select(["registrant_id", "customer_type"],
                                  select(after.c.id, func.unnest(bindparam(name, type_=_TYPES))).select_from(after))


@lru_cache
def insert_by_ref_statement() -> Select[Any]:
    """A new registrant with its one reference, customer types, first history entry and audit entry, unless the
    reference is taken (nothing written: `made` 0) or hashed as an erased person's under one of `erased_refs`
    (nothing written: `erased` true)."""
    erased = REF.alias("erased")
    erased_now = exists().where(erased.c.system == bindparam("ref_system"),
                                erased.c.external_id == any_(bindparam("erased_refs", type_=_REFS)))
    ref = (postgresql.insert(REF).from_select(
        ["id", "registrant_id", "system", "external_id", "created_at"],
        select(bindparam("ref_row_id", type_=REF.c.id.type), bindparam("rid", type_=R.c.id.type),
               bindparam("ref_system", type_=REF.c.system.type), bindparam("ref_id", type_=REF.c.external_id.type),
               bindparam("now", type_=R.c.created_at.type)).where(~erased_now))
        .on_conflict_do_nothing(index_elements=["system", "external_id"]).returning(REF.c.registrant_id).cte("ref"))
    now = bindparam("now", type_=R.c.created_at.type)
    made = insert(R).from_select(
        ["id", *REGISTRANT_COLUMNS, "status", "version", "created_by", "created_at", "updated_at"],
        select(ref.c.registrant_id, *_bound(R, REGISTRANT_COLUMNS, "r_"), literal(RegistrantStatus.active.value),
               literal(1), bindparam("created_by", type_=R.c.created_by.type), now, now)
    ).returning(R.c.id).cte("made")
    writes = [_types_insert(made, "types_added").cte("types"), _history_insert(made).cte("history"),
              pending_insert(made).cte("audit")]
    return select(select(func.count()).select_from(made).scalar_subquery().label("made"),
                  erased_now.label("erased")).add_cte(*writes)


@lru_cache
def update_versioned_statement() -> Select[Any]:
    """Every editable column of a registrant (`rid`; all but `kind`) set, its version bumped, its customer types changed by
    `types_removed`/`types_added`, a history entry and the audit entry, only if its version is still `expected`
    (`changed` 0 otherwise, and nothing written)."""
    changed = (update(R).where(R.c.id == bindparam("rid"), R.c.version == bindparam("expected"))
               .values(**{name: bindparam("r_" + name, type_=R.c[name].type) for name in REGISTRANT_COLUMNS[1:]},
                       version=bindparam("h_version", type_=Integer),
                       updated_at=bindparam("now", type_=R.c.updated_at.type))
               .returning(R.c.id).cte("changed"))
    removed = delete(CT).where(CT.c.registrant_id.in_(select(changed.c.id)),
                               CT.c.customer_type == any_(bindparam("types_removed", type_=_TYPES)))
    writes = [removed.cte("types_removed"), _types_insert(changed, "types_added").cte("types_added"),
              _history_insert(changed).cte("history"), pending_insert(changed).cte("audit")]
    return select(func.count().label("changed")).select_from(changed).add_cte(*writes)

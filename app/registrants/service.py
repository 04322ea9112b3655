"""Rules of registrants and their records: who sees what, minors, references, versions, history, audit."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit import chain
from app.audit import lean as audit_lean
from app.audit import service as audit
from app.auth.principal import Principal
from app.auth.roles import Role
from app.core import clock
from app.core.errors import Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge, PreconditionFailed
from app.db import driver
from app.db.pagination import Page, PageParams, make_page
from app.db.repository import dialect_name
from app.db.session import Database
from app.register import service as register
from app.registrants import erasure, guardians
from app.registrants import repository as repo
from app.registrants import retention as _retention  # noqa: F401 - registers the records' retention rules
from app.registrants.models import GuardianSource, RegistrantKind, RegistrantStatus
from app.registrants.repository import RegistrantFilter, Visibility
from app.registrants.schemas import (
    ExternalRef,
    HistoryRead,
    RecordCreate,
    RecordRead,
    RegistrantCreate,
    RegistrantRead,
    RegistrantStats,
    RegistrantUpdate,
    RegistrantUpsert,
)

MAX_RECORD_DATA_BYTES = 16 * 1024
# Which data category (of the register profile) a record belongs to unless the caller says.
DEFAULT_DATA_CATEGORY = {
    "order": "customer_relationship", "invoice": "accounting_vouchers", "lesson": "customer_relationship",
    "meeting": "customer_relationship", "enrolment": "customer_relationship",
    "survey_answer": "customer_relationship", "feedback": "customer_relationship",
    "contact": "customer_relationship", "other": "customer_relationship",
}
EDITABLE_FIELDS = ("given_name", "family_name", "date_of_birth", "birth_date_estimated", "name", "business_id",
                   "contact_persons", "email", "phone", "address", "language")
_NOT_FOUND = "no such registrant"


def is_integration(principal: Principal) -> bool:
    """Whether the caller is a booking/web-shop integration, limited to the registrants it knows."""
    return principal.role == Role.integration


def visibility_for(principal: Principal) -> Visibility:
    """The registrants a principal may see, as a query condition."""
    if is_integration(principal):
        return Visibility(system=principal.system or "", creator=principal.subject)
    return Visibility()


async def visible_registrant(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID,
                             for_update: bool = False, extras: bool = True) -> RowMapping:
    """The registrant row if the principal may see it (integrations: active ones only); 404 otherwise. Without
    `extras` only its own columns (see `repo.get`)."""
    row = await repo.get(session, registrant_id=registrant_id, visibility=visibility_for(actor), for_update=for_update,
                         extras=extras)
    if row is None or (is_integration(actor) and row["status"] != RegistrantStatus.active):
        raise NotFound(_NOT_FOUND)
    return row


def readable_record_source(principal: Principal) -> str | None:
    """The one place that decides whose records a caller reads: staff every one, an integration its own system's."""
    return (principal.system or "") if is_integration(principal) else None


def etag(version: int) -> str:
    """The ETag of a registrant version."""
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version an If-Match header names (None for absent or `*`); 412 if it names none."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise PreconditionFailed("If-Match does not name a version of this registrant")
    return int(text)


age_on = guardians.age_on


async def _check_rules(session: AsyncSession, *, kind: str, state: dict[str, Any], guardian_count: int = 0,
                       has_children: bool = False) -> None:
    if kind == RegistrantKind.organisation:
        if not state.get("name"):
            raise Invalid("an organisation needs a name", loc=["body", "name"])
        return
    for field in ("given_name", "family_name"):
        if not state.get(field):
            raise Invalid("a person needs a given name and a family name", loc=["body", field])
    born = state.get("date_of_birth")
    if guardian_count:
        guardians.check_child(kind=kind, born=born, loc=["body", "guardian_ids"])
    elif await guardians.needs_guardian(session, born):
        raise Invalid("a child under the guardian age needs a guardian: link one (guardian_ids) first",
                      loc=["body", "guardian_ids"])
    age = guardians.age_today(born)
    if has_children and age is not None and age < guardians.MAJORITY:
        raise Invalid(f"this person is a guardian, so {guardians.MAJORITY} or older", loc=["body", "date_of_birth"])


async def _check_guardians(session: AsyncSession, *, actor: Principal, child_id: uuid.UUID | None,
                           ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The guardians named, each checked (422 naming the index of the wrong one); duplicates count once."""
    for i, guardian_id in enumerate(ids):
        await guardians.check_guardian(session, child_id=child_id, guardian_id=guardian_id,
                                       visibility=visibility_for(actor), loc=["body", "guardian_ids", i])
    return list(dict.fromkeys(ids))


def _check_own_refs(actor: Principal, refs: list[ExternalRef], loc: list[str | int]) -> None:
    if not is_integration(actor):
        return
    for i, ref in enumerate(refs):
        if ref.system != actor.system:
            raise Forbidden(f"this client may only add references of its own system {actor.system!r}",
                            errors=[{"loc": [*loc, i, "system"], "msg": "another system's reference"}])


def jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _read(row: RowMapping | dict[str, Any]) -> RegistrantRead:
    """A registrant row (with its `refs_json`, `types_json`, `guardians_json`, `children_json`) as the body."""
    return RegistrantRead.model_validate({**row, "external_refs": row["refs_json"] or [],
                                          "customer_types": sorted(row["types_json"] or []),
                                          "guardians": guardians.links(row.get("guardians_json")),
                                          "children": guardians.links(row.get("children_json"))})


def _audit(session: AsyncSession, actor: Principal, action: str, registrant_id: uuid.UUID, **details: Any) -> None:
    audit.record(session, actor=actor, action=action, resource_type="registrant", resource_id=registrant_id,
                 registrant_ids=[registrant_id], details=details or None)


def _audit_entry(actor: Principal, action: str, registrant_id: uuid.UUID, **details: Any) -> dict[str, Any]:
    """The entry `_audit` queues, for a statement that writes it itself."""
    return audit.new_entry(actor=actor, action=action, resource_type="registrant", resource_id=registrant_id,
                           registrant_ids=[registrant_id], details=details or None)


def _history_values(*, actor: Principal, version: int, action: str,
                    changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"version": version, "at": clock.utcnow(), "action": action, "actor_type": actor.kind,
            "actor_id": str(actor.id) if actor.id else None, "actor_name": actor.name, "fields": sorted(changes),
            "changes": changes}


async def _history(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID, version: int,
                   action: str, changes: dict[str, dict[str, Any]]) -> None:
    await repo.add_history(session, values={"registrant_id": registrant_id, **_history_values(
        actor=actor, version=version, action=action, changes=changes)})


# --- registrants ----------------------------------------------------------------------------

async def get_registrant(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID) -> RegistrantRead:
    """One registrant the caller may see; the read is audited."""
    row = await visible_registrant(session, actor=actor, registrant_id=registrant_id)
    _audit(session, actor, "registrant.read", registrant_id)
    return _read(row)


async def list_registrants(session: AsyncSession, *, actor: Principal, filters: RegistrantFilter,
                           params: PageParams) -> Page[RegistrantRead]:
    """A page of the registrants the caller may see; one audit entry names them all."""
    visibility, dialect = _list_visibility(actor, filters), dialect_name(session)
    shape = repo.lookup_shape(filters=filters, visibility=visibility, params=params)
    if shape is not None:  # a plain lookup: one statement per shape, its values bound
        stmt, values = (repo.lookup_statement(shape, dialect),
                        repo.lookup_params(filters=filters, visibility=visibility))
    else:
        stmt, values = repo.find_statement(filters=filters, visibility=visibility, params=params, dialect=dialect), None
    # The lookup and its audit entry (naming the page's registrants) in one statement where the database allows.
    rows = await audit.read_audited(session, stmt, params=values, shape=shape, actor=actor, action="registrant.list",
                                    resource_type="registrant", order_by=repo.REGISTRANTS_ORDER, limit=params.limit)
    return make_page(rows, params, keyset=repo.REGISTRANTS_KEYSET, convert=_read)


async def lookup_registrants(database: Database, *, actor: Principal, filters: RegistrantFilter, params: PageParams,
                             async_commit: bool) -> Page[RegistrantRead] | None:
    """`list_registrants` for a plain lookup (by email, phone and/or reference, first page) on PostgreSQL with a
    sequencer sealing: the same statement and audit entry, run on the pooled driver connection (the lean route,
    app/registrants/lean.py); None for any other list, which only `list_registrants` answers."""
    visibility = _list_visibility(actor, filters)
    shape = repo.lookup_shape(filters=filters, visibility=visibility, params=params)
    if shape is None:
        return None
    rows = await audit_lean.read_audited(
        database, repo.lookup_statement(shape, "postgresql"), params=repo.lookup_params(filters=filters,
                                                                                     visibility=visibility),
        shape=shape, actor=actor, action="registrant.list", resource_type="registrant",
        order_by=repo.REGISTRANTS_ORDER, limit=params.limit, async_commit=async_commit)
    return make_page(rows, params, keyset=repo.REGISTRANTS_KEYSET, convert=_read)


def _list_visibility(actor: Principal, filters: RegistrantFilter) -> Visibility:
    """Whom a list may show the caller; integrations list active registrants only."""
    if is_integration(actor) and filters.statuses != (RegistrantStatus.active,):
        raise Forbidden("integrations see active registrants only", errors=[{"loc": ["query", "status"],
                                                                              "msg": "not allowed"}])
    return visibility_for(actor)


async def _insert(session: AsyncSession, *, actor: Principal, data: RegistrantUpsert,
                  refs: list[ExternalRef], ref_keys: list[str] | None) -> RegistrantRead:
    """Insert a registrant with its references, types and first history entry (the caller audits)."""
    fields = data.model_dump(include=set(EDITABLE_FIELDS))
    guardian_ids = await _check_guardians(session, actor=actor, child_id=None, ids=data.guardian_ids)
    await _check_rules(session, kind=data.kind, state=fields, guardian_count=len(guardian_ids))
    if refs:
        if ref_keys is None:
            raise ValueError("references need the service key to recognise erased people")
        await erasure.refuse_erased_refs(session, keys=ref_keys, refs=[(r.system, r.id) for r in refs])
    registrant_id, now = uuid.uuid4(), clock.utcnow()
    await repo.insert_registrant(session, values={
        "id": registrant_id, "kind": data.kind, **fields, "status": RegistrantStatus.active, "version": 1,
        "created_by": actor.subject, "created_at": now, "updated_at": now,
    })
    for i, ref in enumerate(refs):
        if not await repo.claim_ref(session, registrant_id=registrant_id, system=ref.system, external_id=ref.id, now=now):
            raise Conflict("this external reference belongs to another registrant",
                           errors=[{"loc": ["body", "external_refs", i], "msg": "already in use"}])
    types = sorted(set(data.customer_types))
    await repo.add_customer_types(session, registrant_id=registrant_id, types=types)
    for guardian_id in guardian_ids:
        await guardians.link(session, actor=actor, child_id=registrant_id, guardian_id=guardian_id,
                             source=GuardianSource.api)
    changes = _first_changes(fields, types, guardian_ids)
    await _history(session, actor=actor, registrant_id=registrant_id, version=1, action="create", changes=changes)
    links = (await repo.get(session, registrant_id=registrant_id, visibility=Visibility()))["guardians_json"] \
        if guardian_ids else []
    return _read({"id": registrant_id, "kind": data.kind, **fields, "status": RegistrantStatus.active, "version": 1,
                  "created_at": now, "updated_at": now, "refs_json": [r.model_dump() for r in refs], "types_json": types,
                  "guardians_json": links, "children_json": []})


def _first_changes(fields: dict[str, Any], types: list[str],
                   guardian_ids: list[uuid.UUID]) -> dict[str, dict[str, Any]]:
    """The history diff of a new registrant: every field it was given."""
    changes = {k: {"old": None, "new": jsonable(v)} for k, v in fields.items() if v not in (None, [], False)}
    if types:
        changes["customer_types"] = {"old": None, "new": types}
    if guardian_ids:
        changes["guardians"] = {"old": None, "new": [str(g) for g in guardian_ids]}
    return changes


async def create_registrant(session: AsyncSession, *, actor: Principal, data: RegistrantCreate,
                            ref_keys: list[str] | None = None) -> RegistrantRead:
    """Create a registrant with its references (integrations: of their own system only)."""
    _check_own_refs(actor, data.external_refs, ["body", "external_refs"])
    created = await _insert(session, actor=actor, data=data, refs=data.external_refs, ref_keys=ref_keys)
    _audit(session, actor, "registrant.create", created.id)
    return created


def _split_changes(changes: dict[str, Any]) -> tuple[dict[str, Any], list[str] | None]:
    """Column changes (nulls where a column cannot be null refused or emptied) and the new customer types."""
    changes = dict(changes)
    types = changes.pop("customer_types", None)
    if "language" in changes and changes["language"] is None:
        raise Invalid("language cannot be cleared", loc=["body", "language"])
    if "contact_persons" in changes and changes["contact_persons"] is None:
        changes["contact_persons"] = []
    return changes, sorted(set(types)) if types is not None else None


@dataclass(frozen=True)
class _Plan:
    """What a change to a registrant writes: changed columns, customer types, guardians to link, the history diff."""

    values: dict[str, Any]
    new_types: list[str] | None
    current_types: list[str]
    linked: list[uuid.UUID]
    added: list[uuid.UUID]
    diff: dict[str, dict[str, Any]]


async def _plan(session: AsyncSession, *, actor: Principal, row: RowMapping, changes: dict[str, Any],
                expected: int | None, new_guardians: list[uuid.UUID] | None = None) -> _Plan:
    """Check a change against the registrant's state, version and rules, and work out what it writes."""
    if row["status"] != RegistrantStatus.active:
        raise Conflict(f"the registrant is {row['status']}; it cannot be changed here")
    if expected is not None and expected != row["version"]:
        raise PreconditionFailed("the registrant has changed since that version; read it again",
                                 headers={"ETag": etag(row["version"])})
    registrant_id = row["id"]
    changes, new_types = _split_changes(changes)
    if changes.get("birth_date_estimated", False) is None:
        changes["birth_date_estimated"] = False
    linked = [link["registrant_id"] for link in guardians.links(row["guardians_json"])]
    added = [g for g in await _check_guardians(session, actor=actor, child_id=registrant_id, ids=new_guardians or [])
             if g not in linked]
    await _check_rules(session, kind=row["kind"], state={**{k: row[k] for k in EDITABLE_FIELDS}, **changes},
                       guardian_count=len(linked) + len(added), has_children=bool(row["children_json"]))
    current_types = sorted(row["types_json"] or [])
    diff = {k: {"old": jsonable(row[k]), "new": jsonable(v)} for k, v in changes.items() if row[k] != v}
    if new_types is not None and new_types != current_types:
        diff["customer_types"] = {"old": current_types, "new": new_types}
    if added:
        diff["guardians"] = {"old": [str(g) for g in linked], "new": [str(g) for g in [*linked, *added]]}
    values = {k: changes[k] for k in diff if k not in ("customer_types", "guardians")}
    return _Plan(values, new_types, current_types, linked, added, diff)


def _changed(row: RowMapping, plan: _Plan, now: datetime, guardians_json: Any) -> RegistrantRead:
    """The registrant as a change leaves it."""
    types = plan.new_types if plan.new_types is not None else plan.current_types
    return _read({**row, **plan.values, "version": row["version"] + 1, "updated_at": now, "types_json": types,
                  "guardians_json": guardians_json})


async def apply_changes(session: AsyncSession, *, actor: Principal, row: RowMapping, changes: dict[str, Any],
                        expected: int | None, new_guardians: list[uuid.UUID] | None = None) -> RegistrantRead:
    """Change fields under the version check, writing history; 412 if someone else changed it first."""
    plan = await _plan(session, actor=actor, row=row, changes=changes, expected=expected, new_guardians=new_guardians)
    registrant_id, diff, values = row["id"], plan.diff, plan.values
    if not diff:
        _audit(session, actor, "registrant.update", registrant_id, fields=[])
        return _read(row)
    now = clock.utcnow()
    if not await repo.update_versioned(session, registrant_id=registrant_id, expected_version=row["version"],
                                       values={**values, "updated_at": now}):
        raise PreconditionFailed("the registrant was changed by someone else; read it again")
    if plan.new_types is not None and "customer_types" in diff:
        await repo.set_customer_types(session, registrant_id=registrant_id, types=plan.new_types)
    for guardian_id in plan.added:
        await guardians.link(session, actor=actor, child_id=registrant_id, guardian_id=guardian_id,
                             source=GuardianSource.api)
    if {"email", "phone"} & set(values) and row["children_json"]:
        # A guardian's new email or phone is where their children's notices go from now on.
        await repo.refresh_guardian_contact(
            session, child_ids=[link["registrant_id"] for link in guardians.links(row["children_json"])])
    version = row["version"] + 1
    await _history(session, actor=actor, registrant_id=registrant_id, version=version, action="update", changes=diff)
    _audit(session, actor, "registrant.update", registrant_id, fields=sorted(diff))
    fresh = await repo.get(session, registrant_id=registrant_id, visibility=Visibility()) if plan.added else row
    return _changed(row, plan, now, fresh["guardians_json"])


async def update_registrant(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID,
                            data: RegistrantUpdate, if_match: str | None) -> RegistrantRead:
    """Change the fields sent; with If-Match only if the version still matches (412 otherwise)."""
    expected = parse_if_match(if_match)
    # Without If-Match the caller means "whatever is there now": lock the row so a racer cannot make it stale.
    row = await visible_registrant(session, actor=actor, registrant_id=registrant_id, for_update=expected is None)
    return await apply_changes(session, actor=actor, row=row, changes=data.model_dump(exclude_unset=True), expected=expected)


async def upsert_by_ref(session: AsyncSession, *, actor: Principal, system: str, external_id: str,
                        data: RegistrantUpsert, if_match: str | None, ref_keys: list[str]) -> tuple[RegistrantRead, bool]:
    """Create or replace the registrant an external reference names; True when created."""
    if is_integration(actor) and system != actor.system:
        raise Forbidden(f"this client may only use references of its own system {actor.system!r}",
                        errors=[{"loc": ["path", "system"], "msg": "another system's reference"}])
    if dialect_name(session) == "postgresql" and not data.guardian_ids:
        done = await _upsert_in_statements(session, actor=actor, system=system, external_id=external_id, data=data,
                                           expected=parse_if_match(if_match), ref_keys=ref_keys)
        if done is not None:
            return done
    owner = await repo.ref_owner(session, system=system, external_id=external_id)
    if owner is None:
        try:
            async with session.begin_nested():
                created = await _insert(session, actor=actor, data=data,
                                        refs=[ExternalRef(system=system, id=external_id)], ref_keys=ref_keys)
            # Audited after the savepoint, so a lost race leaves no entry for a row that never was.
            _audit(session, actor, "registrant.create", created.id)
            return created, True
        except Conflict:
            # A concurrent request attached the reference first (we waited for it): update that one.
            owner = await repo.ref_owner(session, system=system, external_id=external_id)
            if owner is None:
                raise
    expected = parse_if_match(if_match)
    row = await visible_registrant(session, actor=actor, registrant_id=owner, for_update=expected is None)
    if row["kind"] != data.kind:
        raise Invalid("the kind of a registrant cannot change", loc=["body", "kind"])
    changes = data.model_dump(include={*EDITABLE_FIELDS, "customer_types"})
    return await apply_changes(session, actor=actor, row=row, changes=changes, expected=expected,
                               new_guardians=data.guardian_ids), False


# A lost race (a concurrent upsert of the same reference) reads and writes again, at most this many times.
_UPSERT_ATTEMPTS = 10


async def _upsert_in_statements(session: AsyncSession, *, actor: Principal, system: str, external_id: str,
                                data: RegistrantUpsert, expected: int | None,
                                ref_keys: list[str]) -> tuple[RegistrantRead, bool] | None:
    """PostgreSQL: the upsert as a read and one write statement carrying its reference, types, history and audit
    entry (with a sequencer sealing and the caller cached: two round trips, each its own implicit transaction).

    Optimistic: the write happens only if the reference is still free (insert) or the version still the one read
    (update); a lost race reads again. None when the change needs the general path (a guardian's new email or
    phone rewrites their children's contact).
    """
    # A date of birth makes the rules read the profile through the session: then all of it runs in its transaction.
    async with audit.writing_connection(session, lean=data.date_of_birth is None) as (conn, lean):
        for _attempt in range(_UPSERT_ATTEMPTS):
            row = (await conn.execute(repo.by_ref_statement("postgresql"),
                                      {"ref_system": system, "ref_id": external_id})).mappings().one_or_none()
            if row is None:
                created = await _insert_by_ref(session, conn, lean=lean, actor=actor, system=system,
                                               external_id=external_id, data=data, ref_keys=ref_keys)
                if created is not None:
                    return created, True
                continue  # a concurrent request attached the reference first: update that one
            if is_integration(actor) and row["status"] != RegistrantStatus.active:
                raise NotFound(_NOT_FOUND)
            if row["kind"] != data.kind:
                raise Invalid("the kind of a registrant cannot change", loc=["body", "kind"])
            plan = await _plan(session, actor=actor, row=row, expected=expected,
                               changes=data.model_dump(include={*EDITABLE_FIELDS, "customer_types"}))
            if {"email", "phone"} & set(plan.values) and row["children_json"]:
                return None
            if not plan.diff:
                await audit.write_entry(conn, _audit_entry(actor, "registrant.update", row["id"], fields=[]))
                return _read(row), False
            now = clock.utcnow()
            if await _update_by_plan(conn, lean=lean, actor=actor, row=row, plan=plan, now=now):
                return _changed(row, plan, now, row["guardians_json"]), False
            if expected is not None:
                break
    raise PreconditionFailed("the registrant was changed by someone else; read it again")


async def _insert_by_ref(session: AsyncSession, conn: AsyncConnection, *, lean: bool, actor: Principal, system: str,
                         external_id: str, data: RegistrantUpsert, ref_keys: list[str]) -> RegistrantRead | None:
    """A new registrant with its reference in one statement (see `repo.insert_by_ref_statement`); None when a
    concurrent request took the reference first, 410 when the reference is an erased person's."""
    fields = data.model_dump(include=set(EDITABLE_FIELDS))
    await _check_rules(session, kind=data.kind, state=fields)
    registrant_id, now, types = uuid.uuid4(), clock.utcnow(), sorted(set(data.customer_types))
    changes = _first_changes(fields, types, [])
    history = _history_values(actor=actor, version=1, action="create", changes=changes)
    entry = _audit_entry(actor, "registrant.create", registrant_id)
    made_now, erased = await _write(conn, lean, repo.insert_by_ref_statement(), {
        "ref_row_id": uuid.uuid4(), "rid": registrant_id, "ref_system": system, "ref_id": external_id, "now": now,
        "erased_refs": erasure.erased_refs(ref_keys, system, external_id), "created_by": actor.subject,
        "types_added": types, "h_id": uuid.uuid4(), **{"h_" + k: v for k, v in history.items()},
        **{"r_" + k: v for k, v in {"kind": data.kind, **fields}.items()}, **chain.write_params(entry),
    })
    if erased:
        raise erasure.erased_gone(system)
    if not made_now:
        return None
    return _read({"id": registrant_id, "kind": data.kind, **fields, "status": RegistrantStatus.active, "version": 1,
                  "created_at": now, "updated_at": now, "refs_json": [{"system": system, "id": external_id}],
                  "types_json": types, "guardians_json": [], "children_json": []})


async def _update_by_plan(conn: AsyncConnection, *, lean: bool, actor: Principal, row: RowMapping, plan: _Plan,
                          now: datetime) -> bool:
    """Write a planned change in one statement (see `repo.update_versioned_statement`); False when the version
    changed since the row was read (nothing written)."""
    version, diff = row["version"] + 1, plan.diff
    new_types = set(plan.new_types if "customer_types" in diff and plan.new_types is not None else plan.current_types)
    history = _history_values(actor=actor, version=version, action="update", changes=diff)
    entry = _audit_entry(actor, "registrant.update", row["id"], fields=sorted(diff))
    (changed,) = await _write(conn, lean, repo.update_versioned_statement(), {
        "rid": row["id"], "expected": row["version"], "now": now, "h_id": uuid.uuid4(),
        **{"h_" + k: v for k, v in history.items()},
        **{"r_" + k: plan.values.get(k, row[k]) for k in EDITABLE_FIELDS},
        "types_removed": sorted(set(plan.current_types) - new_types),
        "types_added": sorted(new_types - set(plan.current_types)), **chain.write_params(entry),
    })
    return bool(changed)


async def _write(conn: AsyncConnection, lean: bool, stmt: Any, values: dict[str, Any]) -> tuple[Any, ...]:
    """The row a write statement returns: on a lean (autocommit) connection run on its driver, which costs a
    fraction of SQLAlchemy's execution (app/db/driver.py); in a transaction through SQLAlchemy."""
    if lean:
        return tuple(await driver.fetchrow(conn, stmt, values))
    return tuple((await conn.execute(stmt, values)).one())


async def add_guardian(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID,
                       guardian_id: uuid.UUID, if_match: str | None) -> RegistrantRead:
    """Link a guardian to a child (Laki lapsen huollosta 361/1983 § 4); linking an existing link changes nothing."""
    expected = parse_if_match(if_match)
    row = await visible_registrant(session, actor=actor, registrant_id=registrant_id, for_update=expected is None)
    guardians.check_child(kind=row["kind"], born=row["date_of_birth"], loc=["body", "guardian_id"])
    await guardians.check_guardian(session, child_id=registrant_id, guardian_id=guardian_id,
                                   visibility=visibility_for(actor), loc=["body", "guardian_id"])
    return await apply_changes(session, actor=actor, row=row, changes={}, expected=expected,
                               new_guardians=[guardian_id])


async def remove_guardian(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID,
                          guardian_id: uuid.UUID, if_match: str | None) -> RegistrantRead:
    """Unlink a guardian; a child under the guardian age keeps at least one (422 otherwise)."""
    expected = parse_if_match(if_match)
    row = await visible_registrant(session, actor=actor, registrant_id=registrant_id, for_update=expected is None)
    if row["status"] != RegistrantStatus.active:
        raise Conflict(f"the registrant is {row['status']}; it cannot be changed here")
    if expected is not None and expected != row["version"]:
        raise PreconditionFailed("the registrant has changed since that version; read it again",
                                 headers={"ETag": etag(row["version"])})
    linked = [link["registrant_id"] for link in guardians.links(row["guardians_json"])]
    if guardian_id not in linked:
        raise NotFound("this registrant is not linked to that guardian")
    if len(linked) == 1 and await guardians.needs_guardian(session, row["date_of_birth"]):
        raise Invalid("a child under the guardian age needs a guardian: link another one first",
                      loc=["path", "guardian_id"])
    await repo.delete_link(session, child_id=registrant_id, guardian_id=guardian_id)
    await repo.refresh_guardian_contact(session, child_ids=[registrant_id])
    now, version = clock.utcnow(), row["version"] + 1
    if not await repo.update_versioned(session, registrant_id=registrant_id, expected_version=row["version"],
                                       values={"updated_at": now}):
        raise PreconditionFailed("the registrant was changed by someone else; read it again")
    kept = [g for g in linked if g != guardian_id]
    await _history(session, actor=actor, registrant_id=registrant_id, version=version, action="update",
                   changes={"guardians": {"old": [str(g) for g in linked], "new": [str(g) for g in kept]}})
    _audit(session, actor, "registrant.update", registrant_id, fields=["guardians"])
    fresh = await repo.get(session, registrant_id=registrant_id, visibility=Visibility())
    return _read(fresh)


async def history(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID,
                  params: PageParams) -> Page[HistoryRead]:
    """A registrant's change history, oldest first; the read is audited."""
    await visible_registrant(session, actor=actor, registrant_id=registrant_id)
    rows = await repo.history(session, registrant_id=registrant_id, params=params)
    _audit(session, actor, "registrant.history.read", registrant_id)
    return make_page(rows, params, keyset=repo.HISTORY_KEYSET, convert=HistoryRead.model_validate)


async def stats(session: AsyncSession, *, actor: Principal) -> RegistrantStats:
    """Counts by kind, status and customer type (no personal data)."""
    counts = await repo.counts(session)
    return RegistrantStats(total=sum(counts["kind"].values()), by_kind=counts["kind"], by_status=counts["status"],
                           by_customer_type=counts["customer_type"])


# --- relationship records ---------------------------------------------------------------------

async def add_record(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID,
                     data: RecordCreate) -> tuple[RecordRead, bool]:
    """Add a record; the same source and external id returns the first record (False: not created)."""
    size = len(json.dumps(data.data, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_RECORD_DATA_BYTES:
        raise PayloadTooLarge(f"data is {size} bytes as JSON; the limit is {MAX_RECORD_DATA_BYTES}",
                              errors=[{"loc": ["body", "data"], "msg": "too large"}])
    source = data.source or actor.system or "staff"
    if is_integration(actor) and source != actor.system:
        raise Forbidden(f"this client may only write records of its own system {actor.system!r}",
                        errors=[{"loc": ["body", "source"], "msg": "another system"}])
    row = await visible_registrant(session, actor=actor, registrant_id=registrant_id)
    if row["status"] != RegistrantStatus.active:
        raise Conflict(f"the registrant is {row['status']}; records cannot be added")
    if data.ends_at is not None and data.ends_at < data.occurred_at:
        raise Invalid("ends_at is before occurred_at", loc=["body", "ends_at"])
    category = data.data_category or DEFAULT_DATA_CATEGORY[data.type]
    profile = await register.current_profile(session)
    # Retention and the Art. 30 record work per category, so a record must name one the profile defines.
    if profile is not None and profile.category(category) is None:
        raise Invalid(f"the register profile defines no data category {category!r}", loc=["body", "data_category"])
    record_id = uuid.uuid4()
    created = await repo.insert_record(session, values={
        "id": record_id, "registrant_id": registrant_id, "type": data.type, "occurred_at": data.occurred_at,
        "ends_at": data.ends_at, "source": source, "external_id": data.external_id, "data": data.data,
        "data_category": category, "opt_out_offered": data.opt_out_offered,
        "created_by": actor.subject, "created_at": clock.utcnow(),
    })
    if created:
        stored = await repo.record_by_id(session, record_id=record_id)
    else:
        stored = await repo.record_by_external_id(session, source=source, external_id=data.external_id or "")
        if stored is None or stored["registrant_id"] != registrant_id:
            raise Conflict("this source and external id belong to another registrant's record",
                           errors=[{"loc": ["body", "external_id"], "msg": "already in use"}])
    audit.record(session, actor=actor, action="record.create" if created else "record.replay",
                 resource_type="relationship_record", resource_id=stored["id"], registrant_ids=[registrant_id])
    return RecordRead.model_validate(stored), created


async def list_records(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID,
                       types: tuple[str, ...] | None, since: datetime | None, until: datetime | None,
                       params: PageParams) -> Page[RecordRead]:
    """A page of a registrant's records, newest first; the read is audited."""
    await visible_registrant(session, actor=actor, registrant_id=registrant_id)
    rows = await repo.records(session, registrant_id=registrant_id, types=types, since=since, until=until,
                              source=readable_record_source(actor), params=params)
    page = make_page(rows, params, keyset=repo.RECORDS_KEYSET,
                     convert=RecordRead.model_validate)
    audit.record(session, actor=actor, action="record.list", resource_type="registrant", resource_id=registrant_id,
                 registrant_ids=[registrant_id], details={"count": len(page.items)})
    return page

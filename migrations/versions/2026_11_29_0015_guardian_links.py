"""children and guardians as registrants: guardian_link, estimated dates of birth; the guardian JSON and the
waitlist's guardian names move into guardian registrants of their own, the waitlist's ages into (estimated)
dates of birth, and an entry stored on another person's registrant (a sibling joined with the same email or
phone) onto a registrant of its own. `registrant.guardian` stays, now derived: the linked guardians' email and
phone (the audience address expression and its indexes, migration 0020, read it).

Revision ID: 0015
Revises: 0013
Create Date: 2026-11-29 22:20:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BY = "migration:0015"

registrant = sa.table(
    "registrant", sa.column("id", sa.Uuid()), sa.column("kind", sa.String()), sa.column("given_name", sa.String()),
    sa.column("family_name", sa.String()), sa.column("email", sa.String()), sa.column("phone", sa.String()),
    sa.column("language", sa.String()), sa.column("status", sa.String()), sa.column("version", sa.Integer()),
    sa.column("guardian", sa.JSON()), sa.column("contact_persons", sa.JSON()), sa.column("created_by", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("birth_date_estimated", sa.Boolean()), sa.column("date_of_birth", sa.Date()),
)
entry = sa.table(
    "waitlist_entry", sa.column("id", sa.Uuid()), sa.column("registrant_id", sa.Uuid()),
    sa.column("given_name", sa.String()), sa.column("family_name", sa.String()), sa.column("age", sa.Integer()),
    sa.column("guardian_name", sa.String()), sa.column("guardian_id", sa.Uuid()), sa.column("email", sa.String()),
    sa.column("phone", sa.String()), sa.column("by_email", sa.Boolean()), sa.column("by_sms", sa.Boolean()),
    sa.column("status", sa.String()), sa.column("joined_at", sa.DateTime(timezone=True)),
)
delivery = sa.table("waitlist_delivery", sa.column("entry_id", sa.Uuid()), sa.column("registrant_id", sa.Uuid()))
event = sa.table(
    "consent_event", sa.column("id", sa.Uuid()), sa.column("registrant_id", sa.Uuid()),
    sa.column("purpose", sa.String()), sa.column("channel", sa.String()), sa.column("action", sa.String()),
    sa.column("source", sa.String()), sa.column("evidence", sa.JSON()), sa.column("given_by", sa.String()),
    sa.column("effective_at", sa.DateTime(timezone=True)), sa.column("recorded_at", sa.DateTime(timezone=True)),
    sa.column("recorded_by", sa.String()), sa.column("recorded_by_name", sa.String()),
    sa.column("profile_version", sa.Integer()),
)
state = sa.table(
    "consent_state", sa.column("registrant_id", sa.Uuid()), sa.column("purpose", sa.String()),
    sa.column("channel", sa.String()), sa.column("state", sa.String()), sa.column("event_id", sa.Uuid()),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
history = sa.table(
    "registrant_history", sa.column("id", sa.Uuid()), sa.column("registrant_id", sa.Uuid()),
    sa.column("version", sa.Integer()), sa.column("at", sa.DateTime(timezone=True)), sa.column("action", sa.String()),
    sa.column("actor_type", sa.String()), sa.column("actor_id", sa.String()), sa.column("actor_name", sa.String()),
    sa.column("fields", sa.JSON()), sa.column("changes", sa.JSON()),
)
link = sa.table(
    "guardian_link", sa.column("child_id", sa.Uuid()), sa.column("guardian_id", sa.Uuid()),
    sa.column("source", sa.String()), sa.column("linked_at", sa.DateTime(timezone=True)),
    sa.column("linked_by", sa.String()),
)


def _now(bind: Any) -> datetime:
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now


def _split(name: str) -> tuple[str, str]:
    """A guardian's one-line name as given and family name (the last word is the family name)."""
    given, _, family = name.strip().rpartition(" ")
    return (given or family), family


def _guardian_for(bind: Any, child: Any, guardian: dict[str, Any], made: dict[tuple, uuid.UUID],
                  now: datetime) -> uuid.UUID:
    """The registrant the child's guardian JSON names: one already made here, an active person with the same name
    and the same email or phone, or a new one. Siblings with the same guardian get the same guardian."""
    given, family = _split(guardian.get("name") or "")
    email, phone = (guardian.get("email") or None), (guardian.get("phone") or None)
    key = (given.lower(), family.lower(), email, phone)
    if key in made:
        return made[key]
    contact = [c for c in ((registrant.c.email == email) if email else None,
                           (registrant.c.phone == phone) if phone else None) if c is not None]
    found = None
    if contact:
        found = bind.execute(sa.select(registrant.c.id).where(
            registrant.c.kind == "person", registrant.c.status == "active", registrant.c.id != child.id,
            sa.func.lower(registrant.c.given_name) == given.lower(),
            sa.func.lower(registrant.c.family_name) == family.lower(), sa.or_(*contact)).limit(1)).scalar()
    if found is None:
        found = uuid.uuid4()
        bind.execute(registrant.insert().values(
            id=found, kind="person", given_name=given, family_name=family, email=email, phone=phone,
            language=child.language, status="active", version=1, contact_persons=[], created_by=BY,
            created_at=now, updated_at=now, birth_date_estimated=False))
        bind.execute(history.insert().values(
            id=uuid.uuid4(), registrant_id=found, version=1, at=now, action="create", actor_type="system",
            actor_id=None, actor_name="migration 0015: a child's guardian as a registrant",
            fields=sorted(f for f, v in (("given_name", given), ("family_name", family), ("email", email),
                                         ("phone", phone)) if v), changes={}))
    made[key] = found
    return found


def upgrade() -> None:
    with op.batch_alter_table("registrant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("birth_date_estimated", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.create_table(
        "guardian_link",
        sa.Column("child_id", sa.Uuid(), nullable=False),
        sa.Column("guardian_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.Enum("api", "waitlist", "migration", name="source", native_enum=False,
                                    create_constraint=True, length=16), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by", sa.String(length=80), nullable=False),
        sa.CheckConstraint("child_id <> guardian_id", name=op.f("ck_guardian_link_not_self")),
        sa.ForeignKeyConstraint(["child_id"], ["registrant.id"], name=op.f("fk_guardian_link_child_id_registrant")),
        sa.ForeignKeyConstraint(["guardian_id"], ["registrant.id"],
                                name=op.f("fk_guardian_link_guardian_id_registrant")),
        sa.PrimaryKeyConstraint("child_id", "guardian_id", name=op.f("pk_guardian_link")),
    )
    with op.batch_alter_table("guardian_link", schema=None) as batch_op:
        batch_op.create_index("ix_guardian_link_guardian_id", ["guardian_id"], unique=False)

    bind = op.get_bind()
    now = _now(bind)
    made: dict[tuple, uuid.UUID] = {}
    children = bind.execute(sa.select(registrant.c.id, registrant.c.guardian, registrant.c.language,
                                      registrant.c.version)
                            .where(registrant.c.guardian.is_not(None), registrant.c.status != "erased")
                            .order_by(registrant.c.created_at, registrant.c.id)).all()
    for child in children:
        guardian = child.guardian
        if not isinstance(guardian, dict) or not (guardian.get("name") or "").strip():
            continue
        guardian_id = _guardian_for(bind, child, guardian, made, now)
        bind.execute(link.insert().values(child_id=child.id, guardian_id=guardian_id, source="migration",
                                          linked_at=now, linked_by=BY))
        bind.execute(registrant.update().where(registrant.c.id == child.id).values(version=child.version + 1))
        bind.execute(history.insert().values(
            id=uuid.uuid4(), registrant_id=child.id, version=child.version + 1, at=now, action="update",
            actor_type="system", actor_id=None, actor_name="migration 0015: guardian as a registrant",
            fields=["guardian", "guardians"],
            changes={"guardians": {"old": None, "new": [str(guardian_id)]}}))
    with op.batch_alter_table("waitlist_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guardian_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(op.f("fk_waitlist_entry_guardian_id_registrant"), "registrant", ["guardian_id"],
                                    ["id"])
        batch_op.create_index("ix_waitlist_entry_guardian_id", ["guardian_id"], unique=False)
    _move_waitlist(bind, now, made)
    _derive_guardian_contacts(bind)
    with op.batch_alter_table("waitlist_entry", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_waitlist_entry_age"), type_="check")
        batch_op.drop_column("age")
        batch_op.drop_column("guardian_name")


def _derive_guardian_contacts(bind: Any) -> None:
    """`registrant.guardian` becomes derived: each child's linked guardians' email and phone, else NULL."""
    bind.execute(registrant.update().where(registrant.c.guardian.is_not(None)).values(guardian=None))
    guardian = registrant.alias("g")
    rows = bind.execute(sa.select(link.c.child_id, guardian.c.email, guardian.c.phone)
                        .select_from(link.join(guardian, guardian.c.id == link.c.guardian_id))
                        .where(guardian.c.status == "active")
                        .order_by(link.c.child_id, link.c.linked_at, link.c.guardian_id)).all()
    contacts: dict[uuid.UUID, dict[str, str | None]] = {}
    for row in rows:
        got = contacts.setdefault(row.child_id, {"email": None, "phone": None})
        got["email"] = got["email"] or row.email
        got["phone"] = got["phone"] or row.phone
    for child_id, value in contacts.items():
        if value["email"] or value["phone"]:
            bind.execute(registrant.update().where(registrant.c.id == child_id).values(guardian=value))


def _estimate(age: int, joined_at: datetime) -> date:
    """The latest date of birth of someone `age` years old on the day they joined."""
    day = joined_at.date()
    if (day.month, day.day) == (2, 29):
        day = day.replace(day=28)
    return day.replace(year=day.year - age)


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").strip().lower() == (b or "").strip().lower()


def _history(bind: Any, registrant_id: uuid.UUID, version: int, now: datetime, fields: list[str], why: str) -> None:
    bind.execute(history.insert().values(
        id=uuid.uuid4(), registrant_id=registrant_id, version=version, at=now,
        action="create" if version == 1 else "update", actor_type="system", actor_id=None,
        actor_name=f"migration 0015: {why}", fields=fields, changes={}))


def _copy_grants(bind: Any, row: Any, person_id: uuid.UUID, guardian_id: uuid.UUID | None, now: datetime) -> None:
    """An active entry moved to its own person keeps its waitlist consent: the grant it was joined with."""
    if row.status != "active":
        return
    for channel, on in (("email", row.by_email), ("sms", row.by_sms)):
        if not on:
            continue
        event_id = uuid.uuid4()
        given_by = "guardian" if guardian_id else "self"
        evidence = {"reference": "migration 0015: the grant of joining, moved from the registrant the entry was "
                                 "stored on", "given_by": given_by}
        if guardian_id:
            evidence["guardian_id"] = str(guardian_id)
        bind.execute(event.insert().values(
            id=event_id, registrant_id=person_id, purpose="waitlist", channel=channel, action="grant",
            source="staff", evidence=evidence, given_by=given_by, effective_at=row.joined_at, recorded_at=now,
            recorded_by=BY, recorded_by_name="migration 0015", profile_version=None))
        bind.execute(state.delete().where(state.c.registrant_id == person_id, state.c.purpose == "waitlist",
                                          state.c.channel == channel))
        bind.execute(state.insert().values(registrant_id=person_id, purpose="waitlist", channel=channel,
                                           state="granted", event_id=event_id, updated_at=now))


def _move_waitlist(bind: Any, now: datetime, made: dict[tuple, uuid.UUID]) -> None:
    """Every entry keeps its place; its age becomes a date of birth, its guardian a registrant linked to the child."""
    rows = bind.execute(sa.select(entry.c.id, entry.c.registrant_id, entry.c.given_name, entry.c.family_name,
                                  entry.c.age, entry.c.guardian_name, entry.c.email, entry.c.phone, entry.c.by_email,
                                  entry.c.by_sms, entry.c.status, entry.c.joined_at)
                        .order_by(entry.c.joined_at, entry.c.id)).all()
    split: dict[tuple, uuid.UUID] = {}
    for row in rows:
        owner = bind.execute(sa.select(registrant.c.id, registrant.c.given_name, registrant.c.family_name,
                                       registrant.c.language, registrant.c.version, registrant.c.status,
                                       registrant.c.email, registrant.c.phone, registrant.c.date_of_birth)
                             .where(registrant.c.id == row.registrant_id)).one()
        joined = row.joined_at if row.joined_at.tzinfo else row.joined_at.replace(tzinfo=UTC)
        born = _estimate(row.age, joined)
        guardian_id = None
        if (row.guardian_name or "").strip() and owner.status != "erased":
            # The owner itself may be the guardian (a parent who joined first, then joined the child).
            anyone = SimpleNamespace(id=uuid.UUID(int=0), language=owner.language)
            guardian_id = _guardian_for(bind, anyone, {"name": row.guardian_name, "email": row.email,
                                                       "phone": row.phone}, made, now)
        person_id = owner.id
        if owner.status != "erased" and not (_same(owner.given_name, row.given_name)
                                             and _same(owner.family_name, row.family_name)):
            # Another person's entry on this registrant (a sibling joined with the same email or phone).
            key = (row.given_name.lower(), row.family_name.lower(), owner.id, guardian_id)
            if key not in split:
                split[key] = uuid.uuid4()
                own = guardian_id is None
                bind.execute(registrant.insert().values(
                    id=split[key], kind="person", given_name=row.given_name, family_name=row.family_name,
                    email=row.email if own else None, phone=row.phone if own else None, language=owner.language,
                    status="active", version=1, contact_persons=[], created_by=BY, created_at=now, updated_at=now,
                    birth_date_estimated=True, date_of_birth=born))
                _history(bind, split[key], 1, now, ["given_name", "family_name", "date_of_birth"],
                         "a waitlist entry stored on another person's registrant, as a registrant of its own")
            person_id = split[key]
            bind.execute(entry.update().where(entry.c.id == row.id).values(registrant_id=person_id))
            bind.execute(delivery.update().where(delivery.c.entry_id == row.id).values(registrant_id=person_id))
            _copy_grants(bind, row, person_id, guardian_id, now)
        elif owner.status != "erased":
            changes: dict[str, Any] = {}
            if owner.date_of_birth is None:
                changes.update(date_of_birth=born, birth_date_estimated=True)
            if guardian_id is not None:
                # The email and phone the entry was joined with are the guardian's, now on the guardian's registrant.
                if owner.email and owner.email == row.email:
                    changes["email"] = None
                if owner.phone and owner.phone == row.phone:
                    changes["phone"] = None
            if changes:
                bind.execute(registrant.update().where(registrant.c.id == owner.id)
                             .values(**changes, version=owner.version + 1))
                _history(bind, owner.id, owner.version + 1, now, sorted(changes),
                         "the waitlist's age as an estimated date of birth; the guardian's contact to the guardian")
        if guardian_id is not None:
            if person_id != guardian_id and bind.execute(sa.select(link.c.child_id).where(
                    link.c.child_id == person_id, link.c.guardian_id == guardian_id)).first() is None:
                bind.execute(link.insert().values(child_id=person_id, guardian_id=guardian_id, source="migration",
                                                  linked_at=now, linked_by=BY))
            bind.execute(entry.update().where(entry.c.id == row.id).values(guardian_id=guardian_id))


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("waitlist_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guardian_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("age", sa.Integer(), server_default="0", nullable=False))
    today = datetime.now(UTC).date()
    guardian_of = registrant.alias("guardian_of")
    for row in bind.execute(sa.select(entry.c.id, registrant.c.date_of_birth, guardian_of.c.given_name,
                                      guardian_of.c.family_name)
                            .select_from(entry.join(registrant, registrant.c.id == entry.c.registrant_id)
                                         .outerjoin(guardian_of, guardian_of.c.id == entry.c.guardian_id))).all():
        born = row.date_of_birth
        age = None if born is None else today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        name = " ".join(p for p in (row.given_name, row.family_name) if p) or None
        bind.execute(entry.update().where(entry.c.id == row.id).values(
            age=min(max(age if age is not None else 0, 0), 120), guardian_name=name))
    with op.batch_alter_table("waitlist_entry", schema=None) as batch_op:
        batch_op.alter_column("age", server_default=None)
        batch_op.create_check_constraint(op.f("ck_waitlist_entry_age"), "age >= 0 AND age <= 120")
        batch_op.drop_index("ix_waitlist_entry_guardian_id")
        batch_op.drop_constraint(op.f("fk_waitlist_entry_guardian_id_registrant"), type_="foreignkey")
        batch_op.drop_column("guardian_id")
    bind.execute(registrant.update().where(registrant.c.guardian.is_not(None)).values(guardian=None))
    guardian = registrant.alias("g")
    rows = bind.execute(sa.select(link.c.child_id, guardian.c.given_name, guardian.c.family_name, guardian.c.email,
                                  guardian.c.phone)
                        .select_from(link.join(guardian, guardian.c.id == link.c.guardian_id))
                        .order_by(link.c.child_id, link.c.linked_at.desc())).all()
    # The first-linked guardian is written last, so it is the one kept.
    for row in rows:
        name = " ".join(p for p in (row.given_name, row.family_name) if p)
        value = {k: v for k, v in (("name", name), ("email", row.email), ("phone", row.phone)) if v}
        bind.execute(registrant.update().where(registrant.c.id == row.child_id).values(guardian=value or None))
    with op.batch_alter_table("guardian_link", schema=None) as batch_op:
        batch_op.drop_index("ix_guardian_link_guardian_id")
    op.drop_table("guardian_link")
    with op.batch_alter_table("registrant", schema=None) as batch_op:
        batch_op.drop_column("birth_date_estimated")

"""Migration 0015 moves today's waitlist ages and guardian names, and the registrants' guardian JSON, into
registrants of their own linked as guardians, without losing an entry (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import MetaData, create_engine, func, select
from sqlalchemy.engine import make_url

from app.db import migrations
from tests.conftest import _fresh_postgres, _postgres_database

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def scratch_url(tmp_path) -> str:
    """An empty database of this test's own (a scratch SQLite file, or a PostgreSQL database beside the test one)."""
    base = os.environ.get("REKISTERI_TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp_path / 'mig15.db'}"
    url = _postgres_database(base, "mig15")
    _fresh_postgres(url)
    return url


def _engine(url: str):
    target = make_url(url)
    if target.get_backend_name() == "postgresql":
        target = target.set(drivername="postgresql+psycopg")
    return create_engine(target)


def test_waitlist_and_guardians_move_into_the_new_model(scratch_url):
    config = migrations.alembic_config(scratch_url)
    command.upgrade(config, "0013")
    engine = _engine(scratch_url)
    sqlite = engine.dialect.name == "sqlite"

    def u(value: uuid.UUID):
        return value.hex if sqlite else value

    def t(value: datetime):
        return value.replace(tzinfo=None) if sqlite else value

    meta = MetaData()
    meta.reflect(engine, only=["registrant", "waitlist_entry"])
    R, E = meta.tables["registrant"], meta.tables["waitlist_entry"]
    ella, maija, kid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    tag = uuid.uuid4().hex[:8]
    parent_email, parent_phone = f"pirjo.{tag}@example.fi", "+358401112223"

    def person(rid, given, family, **extra):
        return {"id": u(rid), "kind": "person", "given_name": given, "family_name": family, "contact_persons": [],
                "language": "fi", "status": "active", "version": 1, "created_by": "test", "created_at": t(NOW),
                "updated_at": t(NOW), "email": None, "phone": None, "date_of_birth": None, "guardian": None, **extra}

    def entry(rid, given, family, age, guardian, interest, joined):
        return {"id": u(uuid.uuid4()), "registrant_id": u(rid), "given_name": given, "family_name": family,
                "guardian_name": guardian, "age": age, "email": parent_email if guardian else f"m.{tag}@example.fi",
                "phone": parent_phone if guardian else None, "by_email": True, "by_sms": bool(guardian),
                "cancellations": interest == "cancellations", "enrolments": interest == "enrolments",
                "status": "active", "joined_at": t(joined), "token_hash": uuid.uuid4().hex * 2, "created_by": "test"}

    with engine.begin() as conn:
        # Ella joined with her parent's email and phone; her brother Eero's entry landed on Ella's registrant.
        conn.execute(R.insert(), [
            person(ella, "Ella", "Esimerkki", email=parent_email, phone=parent_phone),
            person(maija, "Maija", "Meikäläinen", email=f"m.{tag}@example.fi"),
            person(kid, "Kaapo", "Koski", date_of_birth=date(NOW.year - 8, 3, 1),
                   guardian={"name": "Kalle Koski", "email": f"kalle.{tag}@example.fi"}),
        ])
        conn.execute(E.insert(), [
            entry(ella, "Ella", "Esimerkki", 9, "Pirjo Esimerkki", "cancellations", NOW - timedelta(days=400)),
            entry(ella, "Eero", "Esimerkki", 7, "Pirjo Esimerkki", "enrolments", NOW - timedelta(days=10)),
            entry(maija, "Maija", "Meikäläinen", 34, None, "cancellations", NOW - timedelta(days=5)),
        ])
    command.upgrade(config, "head")

    meta = MetaData()
    meta.reflect(engine, only=["registrant", "waitlist_entry", "guardian_link", "consent_state"])
    R, E, GL, ST = (meta.tables[n] for n in ("registrant", "waitlist_entry", "guardian_link", "consent_state"))
    with engine.connect() as conn:
        entries = {row.given_name: row for row in conn.execute(select(E).where(E.c.token_hash.is_not(None)))}
        assert set(entries) == {"Ella", "Eero", "Maija"} and conn.execute(select(func.count()).select_from(E)).scalar() == 3
        people = {row.given_name: row for row in conn.execute(select(R))}
        ids = lambda value: uuid.UUID(str(value))  # noqa: E731 - CHAR(32) on SQLite, uuid on PostgreSQL
        assert ids(entries["Ella"].registrant_id) == ella
        eero = people["Eero"]
        assert ids(entries["Eero"].registrant_id) == ids(eero.id) != ella
        pirjo = people["Pirjo"]
        assert pirjo.family_name == "Esimerkki" and pirjo.email == parent_email and pirjo.phone == parent_phone
        links = {(ids(row.child_id), ids(row.guardian_id)) for row in conn.execute(select(GL))}
        assert {(ella, ids(pirjo.id)), (ids(eero.id), ids(pirjo.id)), (kid, ids(people["Kalle"].id))} == links
        assert people["Kalle"].email == f"kalle.{tag}@example.fi"
        assert ids(entries["Ella"].guardian_id) == ids(entries["Eero"].guardian_id) == ids(pirjo.id)
        assert entries["Maija"].guardian_id is None
        # The guardian's email and phone are the guardian's now, not the child's.
        assert people["Ella"].email is None and people["Ella"].phone is None
        # Ages became estimated dates of birth: 9 on the day Ella joined, 34 on the day Maija joined.
        for name, age, days in (("Ella", 9, 400), ("Eero", 7, 10), ("Maija", 34, 5)):
            born = date.fromisoformat(str(people[name].date_of_birth)[:10])
            joined = (NOW - timedelta(days=days)).date()
            assert people[name].birth_date_estimated
            assert joined.year - born.year - ((joined.month, joined.day) < (born.month, born.day)) == age, name
        assert not people["Kaapo"].birth_date_estimated
        # Eero keeps the consent he joined with, on his own registrant.
        states = {(row.channel, row.state) for row in conn.execute(select(ST).where(ST.c.registrant_id == eero.id))}
        assert states == {("email", "granted"), ("sms", "granted")}

    command.downgrade(config, "0013")
    meta = MetaData()
    meta.reflect(engine, only=["registrant", "waitlist_entry"])
    E, R = meta.tables["waitlist_entry"], meta.tables["registrant"]
    with engine.connect() as conn:
        back = {row.given_name: row for row in conn.execute(select(E))}
        assert {n: (r.guardian_name, r.age) for n, r in back.items()} == {
            "Ella": ("Pirjo Esimerkki", back["Ella"].age), "Eero": ("Pirjo Esimerkki", back["Eero"].age),
            "Maija": (None, back["Maija"].age)}
        assert back["Maija"].age in (34, 35) and back["Ella"].age in (10, 11)
        kaapo = conn.execute(select(R.c.guardian).where(R.c.given_name == "Kaapo")).scalar_one()
        assert kaapo["name"] == "Kalle Koski"
    command.upgrade(config, "head")
    engine.dispose()

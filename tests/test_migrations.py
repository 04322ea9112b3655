"""The migrations build exactly the schema the models describe, on this run's database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from app.core.config import get_settings
from app.db import migrations
from app.db.base import Base
from app.registrants.erasure import erased_ref
from tests.conftest import TEST_SECRET


def test_upgrade_head_then_check_finds_no_difference(database_url):
    # The session fixture already ran `upgrade head` on this database; run it again (idempotent) and compare.
    migrations.upgrade(database_url)
    command.check(migrations.alembic_config(database_url))  # raises if autogenerate would emit anything


def test_every_model_table_exists(database_url):
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables


def test_downgrade_and_upgrade_again_on_a_scratch_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'scratch.db'}"
    config = migrations.alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)


class TestErasureKeyMigration:
    """0013: erased references hashed with the JWT key keep being refused once erasure keys have their own key."""

    @staticmethod
    def _legacy_database(tmp_path) -> str:
        url = f"sqlite:///{tmp_path / 'legacy.db'}"
        command.upgrade(migrations.alembic_config(url), "0014")
        engine = create_engine(url)
        with engine.begin() as connection:
            person = uuid.uuid4().hex
            connection.execute(text(
                "INSERT INTO registrant (id, kind, contact_persons, language, status, version, created_by, created_at, "
                "updated_at) VALUES (:id, 'person', '[]', 'fi', 'erased', 2, 'test', :now, :now)"),
                {"id": person, "now": datetime.now(UTC)})
            connection.execute(text(
                "INSERT INTO registrant_ref (id, registrant_id, system, external_id, created_at) "
                "VALUES (:id, :person, 'booking', :hashed, :now)"),
                {"id": uuid.uuid4().hex, "person": person, "now": datetime.now(UTC),
                 "hashed": erased_ref(TEST_SECRET, "booking", "bk-1")})
        engine.dispose()
        return url

    @staticmethod
    def _environment(monkeypatch, **values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"REKISTERI_{name.upper()}", value)
        get_settings.cache_clear()
        monkeypatch.setattr("app.core.config.get_settings", get_settings)

    def test_development_keeps_the_jwt_key_as_the_oldest_erasure_key(self, tmp_path, monkeypatch):
        url = self._legacy_database(tmp_path)
        self._environment(monkeypatch, jwt_secret=TEST_SECRET, erasure_keys_file=str(tmp_path / "erasure"))
        try:
            command.upgrade(migrations.alembic_config(url), "head")
            keys = get_settings().erasure_key_list()
        finally:
            get_settings.cache_clear()
        assert len(keys) == 2 and keys[1] == TEST_SECRET  # a new key first, the one the hashes were made with last

    def test_production_refuses_until_the_old_key_is_listed(self, tmp_path, monkeypatch):
        url = self._legacy_database(tmp_path)
        self._environment(monkeypatch, jwt_secret=TEST_SECRET, erasure_keys="new-" + "n" * 40)
        try:
            with pytest.raises(RuntimeError, match="append that key to REKISTERI_ERASURE_KEYS"):
                command.upgrade(migrations.alembic_config(url), "head")
            self._environment(monkeypatch, erasure_keys=f"{'new-' + 'n' * 40},{TEST_SECRET}")
            command.upgrade(migrations.alembic_config(url), "head")
        finally:
            get_settings.cache_clear()

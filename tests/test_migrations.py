"""The migrations build exactly the schema the models describe, on this run's database."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from app.db import migrations
from app.db.base import Base


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

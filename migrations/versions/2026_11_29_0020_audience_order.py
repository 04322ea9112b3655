"""audience: the (address, id) order of the email and SMS/phone audiences read from an index (PostgreSQL)

`GET /v1/audience` lists candidates in (address, id) order so that an address is listed once; the address is the
registrant's own, else its guardian's, else its first contact person's (`app.consents.repository.contact_of`).
Without an index each page sorted every candidate; with these partial expression indexes a page reads only its
own rows. The expressions must stay exactly those `contact_of` compiles to on PostgreSQL (byte order,
`COLLATE "C"`): `tests/consents/test_audience_index.py` checks that the planner uses them. SQLite keeps sorting.

Revision ID: 0020
Revises: 0014
Create Date: 2026-11-29 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIELDS = {"ix_registrant_audience_email": "email", "ix_registrant_audience_phone": "phone"}


def _expression(field: str) -> str:
    return (f"(coalesce({field}, CAST((guardian ->> '{field}') AS VARCHAR), "
            f"CAST((contact_persons #>> '{{0, {field}}}') AS VARCHAR)) COLLATE \"C\")")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index, field in FIELDS.items():
        op.execute(f"CREATE INDEX {index} ON registrant ({_expression(field)}, id) WHERE status = 'active'")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in FIELDS:
        op.execute(f"DROP INDEX {index}")

"""retention indexes: the restricted registrants, and the records with an end (contracts, courses)

Two small partial indexes the purge reads for every batch: whether a registrant is restricted (GDPR Art. 18, a
hold on every rule) and whether a contract or course of theirs runs past the bound (the customer relationship
has not ended). Without them PostgreSQL answered either question for a batch by reading the whole table.

Revision ID: 0021
Revises: 0019
Create Date: 2026-11-30 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESTRICTED = sa.text("status = 'restricted'")
CONTRACT = sa.text("ends_at IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_registrant_restricted", "registrant", ["id"], postgresql_where=RESTRICTED,
                    sqlite_where=RESTRICTED)
    op.create_index("ix_relationship_record_contract", "relationship_record", ["registrant_id", "ends_at"],
                    postgresql_where=CONTRACT, sqlite_where=CONTRACT)


def downgrade() -> None:
    op.drop_index("ix_relationship_record_contract", table_name="relationship_record")
    op.drop_index("ix_registrant_restricted", table_name="registrant")

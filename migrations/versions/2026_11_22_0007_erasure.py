"""erasure: records kept by a legal obligation say so; registrants can be flagged for staff attention

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-22 05:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("relationship_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legal_hold", sa.String(length=200), nullable=True))
    with op.batch_alter_table("registrant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attention", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registrant", schema=None) as batch_op:
        batch_op.drop_column("attention")
    with op.batch_alter_table("relationship_record", schema=None) as batch_op:
        batch_op.drop_column("legal_hold")

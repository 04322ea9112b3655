"""retention start events: a record's contract or course end, an account's deactivation time

Revision ID: 0019
Revises: 0015
Create Date: 2026-11-29 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("relationship_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
    # Accounts deactivated before this revision: their last change is the closest known time (never earlier).
    op.execute("UPDATE user_account SET deactivated_at = updated_at WHERE active = false")


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("deactivated_at")
    with op.batch_alter_table("relationship_record", schema=None) as batch_op:
        batch_op.drop_column("ends_at")

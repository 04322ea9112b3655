"""direct marketing: sale records' opt-out offer, used one-click opt-out tokens

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 19:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("relationship_record") as batch:
        batch.add_column(sa.Column("opt_out_offered", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "optout_use",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("registrant_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["consent_event.id"], name=op.f("fk_optout_use_event_id_consent_event")),
        sa.ForeignKeyConstraint(["registrant_id"], ["registrant.id"],
                                name=op.f("fk_optout_use_registrant_id_registrant")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_optout_use")),
    )
    op.create_index("ix_optout_use_registrant_id", "optout_use", ["registrant_id"])


def downgrade() -> None:
    op.drop_index("ix_optout_use_registrant_id", table_name="optout_use")
    op.drop_table("optout_use")
    with op.batch_alter_table("relationship_record") as batch:
        batch.drop_column("opt_out_offered")

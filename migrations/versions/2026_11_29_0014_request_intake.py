"""requests: any channel (flagged when unadvertised), who acts on what authority, Art. 19 on request,
one-time known-contact confirmation links

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-29 19:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ACTIONS = ("file", "verify", "link", "start", "extend", "complete", "reject", "withdraw", "lift_restriction")
NEW_ACTIONS = (*ACTIONS, "send_confirmation", "confirm")


def _actions(values: tuple[str, ...], length: int) -> None:
    """The event log's action column: its length and its CHECK constraint (0011 made it)."""
    with op.batch_alter_table("subject_request_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_subject_request_event_action"), type_="check")
        batch_op.alter_column("action", type_=sa.String(length=length), existing_nullable=False)
        listed = ", ".join(f"'{value}'" for value in values)
        batch_op.create_check_constraint(op.f("ck_subject_request_event_action"), f"action IN ({listed})")


def upgrade() -> None:
    _actions(NEW_ACTIONS, 32)
    with op.batch_alter_table("subject_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authority", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("channel_advertised", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("recipients_requested", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.create_table(
        "subject_request_confirmation",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("sent_to", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["subject_request.id"],
                                name=op.f("fk_subject_request_confirmation_request_id_subject_request")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_request_confirmation")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_subject_request_confirmation_token_sha256")),
    )
    with op.batch_alter_table("subject_request_confirmation", schema=None) as batch_op:
        batch_op.create_index("ix_subject_request_confirmation_request_id", ["request_id"], unique=False)


def downgrade() -> None:
    _actions(ACTIONS, 16)
    with op.batch_alter_table("subject_request_confirmation", schema=None) as batch_op:
        batch_op.drop_index("ix_subject_request_confirmation_request_id")
    op.drop_table("subject_request_confirmation")
    with op.batch_alter_table("subject_request", schema=None) as batch_op:
        batch_op.drop_column("recipients_requested")
        batch_op.drop_column("channel_advertised")
        batch_op.drop_column("authority")

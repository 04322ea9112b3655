"""state checks: CHECK constraints on the states and kinds of registrants and data-subject requests

The values are the app's StrEnum members (app/registrants/models.py, app/subject_requests/states.py),
spelled out here because migrations never import app code. Outbox and waitlist states had their
CHECK constraints from the start.

Revision ID: 0011
Revises: 0005
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REQUEST_STATUSES = ("received", "verified", "in_progress", "completed", "rejected", "withdrawn")
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "registrant": {
        "kind": ("person", "organisation"),
        "status": ("active", "restricted", "erased"),
    },
    "subject_request": {
        "type": ("access", "rectification", "erasure", "restriction", "portability", "objection"),
        "status": REQUEST_STATUSES,
    },
    "subject_request_event": {
        "action": ("file", "verify", "link", "start", "extend", "complete", "reject", "withdraw", "lift_restriction"),
        "from_status": REQUEST_STATUSES,
        "to_status": REQUEST_STATUSES,
    },
}


def upgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column, values in columns.items():
                listed = ", ".join(f"'{value}'" for value in values)
                batch.create_check_constraint(op.f(f"ck_{table}_{column}"), f"{column} IN ({listed})")


def downgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")

"""storage limitation: erased references keep their hashes under the erasure keys, not the JWT key

Before this revision an erased person's external references were kept as HMACs keyed with the token signing
key, so rotating that key would have let a re-push of the same reference through (un-erasing the person,
GDPR Art. 17). A keyed hash cannot be re-keyed without the reference it hides, so the key they were made with is
kept as the oldest erasure key (REKISTERI_ERASURE_KEYS checks every key): in development it is appended to the
generated key file; in production the migration refuses until the operator has appended it.

Revision ID: 0013
Revises: 0018
Create Date: 2026-11-29 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ERASED = "erased:%"


def upgrade() -> None:
    erased = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM registrant_ref WHERE external_id LIKE :erased"), {"erased": ERASED}).scalar_one()
    if erased:
        _keep_legacy_key(erased)


def _keep_legacy_key(erased: int) -> None:
    from app.core.config import get_settings  # noqa: PLC0415 - the running service's keys, as env.py reads them

    settings = get_settings()
    if not settings.keep_erasure_key(settings.legacy_erasure_key()):
        raise RuntimeError(
            f"{erased} erased references were hashed with the JWT signing key; append that key to "
            "REKISTERI_ERASURE_KEYS as the oldest one (REKISTERI_ERASURE_KEYS=<new key>,<current JWT secret>) "
            "and run the migration again, or a re-push of their references would no longer be refused")


def downgrade() -> None:
    # References erased after the upgrade are hashed with the erasure key, which older code does not know.
    pass

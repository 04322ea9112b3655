"""The registrants domain's part in data-subject rights: its section of the access package (the relationship
records) and its erasure steps (app.registrants.erasure)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.registrants import erasure
from app.registrants.models import RelationshipRecord
from app.subject_requests.package import PackageSection
from app.subject_requests.texts import TEXTS

REC = RelationshipRecord.__table__


async def _records(session: AsyncSession, registrant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The relationship records of a registrant, oldest first."""
    stmt = (select(REC.c.id, REC.c.type, REC.c.occurred_at, REC.c.ends_at, REC.c.source, REC.c.external_id,
                   REC.c.data, REC.c.data_category, REC.c.created_at)
            .where(REC.c.registrant_id == registrant_id).order_by(REC.c.occurred_at, REC.c.id))
    return [dict(row) for row in (await session.execute(stmt)).mappings()]


SECTIONS = (PackageSection("relationship_records", _records, title=TEXTS["sections"]["relationship_records"]),)
ERASURE = erasure.STEPS

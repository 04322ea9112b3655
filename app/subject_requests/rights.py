"""The data-subject requests' part in the rights: the `requests` section of the access package, and erasure.

Erasing a person erases what earlier requests froze about them too (GDPR Art. 17): their access and
portability packages (from which the letters are rendered) go, and their earlier requests keep no contact
details. The erasure request being completed stays as it is until its own retention period ends.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.registrants.erasure import ErasureContext, ErasureStep, Kept
from app.subject_requests import repository as repo
from app.subject_requests.models import SubjectRequest, SubjectRequestPackage
from app.subject_requests.package import PackageSection
from app.subject_requests.texts import TEXTS

RQ, PKG = SubjectRequest.__table__, SubjectRequestPackage.__table__
ERASED_REQUESTER = {"name": "(erased)"}


async def _requests(session: AsyncSession, registrant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The data-subject requests of a registrant (this one as it stood when the package was made), with any
    fee and, where the person asked, the recipients told of the outcome (GDPR Art. 19)."""
    rows = await repo.of_registrant(session, registrant_id=registrant_id)
    for row in rows:
        outcome = row.get("outcome") or {}
        row["fee"] = {k: outcome["fee"][k] for k in ("amount", "currency", "ground")} if outcome.get("fee") else None
        row["recipients_disclosed"] = outcome.get("recipients_disclosed")
    return rows


async def _erase(session: AsyncSession, context: ErasureContext) -> list[Kept]:
    """Earlier packages go; earlier requests keep what was asked and done, not who the person is."""
    earlier = [RQ.c.registrant_id == context.registrant_id]
    if context.request_ref.startswith("request:"):
        earlier.append(RQ.c.id != uuid.UUID(context.request_ref.removeprefix("request:")))
    ids = select(RQ.c.id).where(*earlier)
    await session.execute(delete(PKG).where(PKG.c.request_id.in_(ids)))
    await session.execute(update(RQ).where(*earlier).values(requester=ERASED_REQUESTER, details=None,
                                                            authority=None))
    return []


SECTIONS = (PackageSection("requests", _requests, title=TEXTS["sections"]["requests"], provided=False),)
ERASURE = ErasureStep("requests", ("subject_request", "subject_request_package"), _erase)

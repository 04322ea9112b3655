"""On PostgreSQL the audience's (address, id) order comes from the expression indexes of migration 0020.

If `contact_of` and the indexed expression drift apart, the planner silently falls back to sorting every candidate
on each page; this test fails instead.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from app.consents import repository as repo


@pytest.mark.parametrize(("channel", "index"), [("email", "ix_registrant_audience_email"),
                                                 ("sms", "ix_registrant_audience_phone"),
                                                 ("phone", "ix_registrant_audience_phone")])
async def test_a_page_is_read_in_index_order_without_a_sort(app, is_postgres, channel, index):
    if not is_postgres:
        pytest.skip("SQLite sorts; the indexes are PostgreSQL's")
    for resume in (None, ("m@example.com", uuid.UUID(int=0))):
        stmt = repo.audience_candidates(purpose="newsletter", channel=channel, consent_based=True, sale_types=[],
                                        visibility=None, after=None, resume=resume, limit=1001, dialect="postgresql")
        async with app.state.db.engine.connect() as conn:
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            # Make every other plan prohibitively dear, so only a missing or mismatched index leaves a Sort.
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            await conn.execute(text("SET LOCAL enable_sort = off"))
            plan = "\n".join(row[0] for row in await conn.exec_driver_sql("EXPLAIN " + sql))
        assert index in plan and "Sort" not in plan, plan

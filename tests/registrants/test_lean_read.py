"""The audited lookup's lean path: the lookup and its audit entry in one statement (on its own, an implicit
transaction: one round trip, when a sequencer seals), sealed later with the page's registrants named."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry, AuditSubject
from app.audit.sequencer import Sequencer
from app.main import create_app
from tests.conftest import unique_email


class TestLeanLookup:
    @pytest.mark.commits
    @pytest.mark.parametrize("read_commit", ["sync", "async"])
    async def test_lookups_are_audited_and_sealed_with_their_registrants(self, settings, accounts, read_commit):
        configured = settings.model_copy(update={"audit_sealing": "sequencer", "principal_cache_seconds": 1.0,
                                                 "audit_read_commit": read_commit})
        app = create_app(configured)
        staff = accounts["staff"].headers
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                email = unique_email("lean")
                made = await http.post("/v1/registrants", headers=staff, json={
                    "kind": "person", "given_name": "Lea", "family_name": "Lean", "email": email})
                assert made.status_code == 201, made.text
                rid = made.json()["id"]
                # The first reads the caller from the database (a transaction), the next from the cache: one statement.
                for _ in range(3):
                    r = await http.get("/v1/registrants", headers=staff, params={"email": email.upper()})
                    assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [rid]
                    assert r.json()["next_cursor"] is None
                missing = await http.get("/v1/registrants", headers=staff, params={"email": unique_email("none")})
                assert missing.json() == {"items": [], "next_cursor": None}
            await Sequencer(app.state.db, configured).drain(wait=True)
            async with app.state.db.sessionmaker() as session:
                seqs = set((await session.execute(select(AuditSubject.entry_seq).where(
                    AuditSubject.registrant_id == uuid.UUID(rid)))).scalars())
                listed = (await session.execute(select(AuditEntry).where(
                    AuditEntry.seq.in_(seqs), AuditEntry.action == "registrant.list"))).scalars().all()
            assert len(listed) == 3
            assert all(e.registrant_ids == [rid] and e.details == {"count": 1} for e in listed)
            assert {e.actor_id for e in listed} == {accounts["staff"].id}
        finally:
            await app.state.db.engine.dispose()

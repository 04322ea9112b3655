"""The upsert by reference's lean path: with a sequencer sealing and the caller cached, the read and the one write
statement run on a connection of their own in autocommit (on PostgreSQL), and answer as the general path does."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.audit.sequencer import Sequencer
from app.main import create_app
from app.registrants.models import RegistrantHistory
from tests.registrants.conftest import ext_id, person


class TestLeanUpsert:
    @pytest.mark.commits
    async def test_create_change_repeat_and_stale_version_are_audited_and_sealed(self, settings, accounts):
        configured = settings.model_copy(update={"audit_sealing": "sequencer", "principal_cache_seconds": 1.0})
        app = create_app(configured)
        staff = accounts["staff"].headers
        url = f"/v1/registrants/by-ref/booking/{ext_id()}"
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                await http.get("/v1/auth/me", headers=staff)  # the caller cached: the upserts start untouched
                made = await http.put(url, headers=staff, json=person(customer_types=["course"]))
                assert made.status_code == 201 and made.headers["etag"] == '"1"', made.text
                rid = made.json()["id"]
                changed = await http.put(url, headers=staff, json=person(given_name="Toka", customer_types=["season"]))
                assert changed.status_code == 200 and changed.headers["etag"] == '"2"', changed.text
                assert changed.json()["customer_types"] == ["season"] and changed.json()["given_name"] == "Toka"
                assert (await http.get(f"/v1/registrants/{rid}", headers=staff)).json() == changed.json()
                body = {**person(given_name="Toka", customer_types=["season"]), "email": changed.json()["email"]}
                same = await http.put(url, headers=staff, json=body)
                assert same.status_code == 200 and same.json() == changed.json()
                stale = await http.put(url, headers={**staff, "If-Match": '"1"'}, json=person(given_name="Kolmas"))
                assert stale.status_code == 412 and stale.headers["etag"] == '"2"'
                kind = await http.put(url, headers=staff, json={"kind": "organisation", "name": "Oy"})
                assert kind.status_code == 422
            await Sequencer(app.state.db, configured).drain(wait=True)
            async with app.state.db.sessionmaker() as session:
                entries = (await session.execute(select(AuditEntry).where(
                    AuditEntry.resource_id == rid, AuditEntry.action.in_(["registrant.create", "registrant.update"]))
                    .order_by(AuditEntry.seq))).scalars().all()
                versions = (await session.execute(select(RegistrantHistory.version).where(
                    RegistrantHistory.registrant_id == uuid.UUID(rid)).order_by(RegistrantHistory.version))).all()
            # The refused requests wrote nothing: one entry each for the create, the change and the repeat.
            assert [(e.action, e.details) for e in entries] == [
                ("registrant.create", {}), ("registrant.update", {"fields": ["customer_types", "email", "given_name"]}),
                ("registrant.update", {"fields": []})]
            assert all(e.registrant_ids == [rid] and e.actor_id == accounts["staff"].id for e in entries)
            assert [v for (v,) in versions] == [1, 2]
        finally:
            await app.state.db.engine.dispose()

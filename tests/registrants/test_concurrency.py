"""Idempotency keys and If-Match under real concurrent HTTP against `rekisteri serve --workers 2`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.audit.sequencer import Sequencer
from app.idempotency.models import IdempotencyKey
from app.registrants.models import Registrant
from tests.conftest import bearer, password_login
from tests.registrants.conftest import ext_id, person

pytestmark = pytest.mark.asyncio


class TestIdempotencyKey:
    async def test_retry_returns_the_first_response(self, client, make_user):
        staff = await make_user("staff")
        headers = {**staff.headers, "Idempotency-Key": ext_id()}
        body = person()
        first = await client.post("/v1/registrants", headers=headers, json=body)
        again = await client.post("/v1/registrants", headers=headers, json=body)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json() and again.headers["etag"] == '"1"'

    async def test_same_key_other_body_is_422(self, client, make_user, app):
        staff = await make_user("staff")
        headers = {**staff.headers, "Idempotency-Key": ext_id()}
        assert (await client.post("/v1/registrants", headers=headers, json=person())).status_code == 201
        r = await client.post("/v1/registrants", headers=headers, json=person(given_name="Other"))
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]

    async def test_keys_are_per_principal_and_bounded(self, client, make_user):
        key = ext_id()
        a, b = await make_user("staff"), await make_user("staff")
        ra = await client.post("/v1/registrants", headers={**a.headers, "Idempotency-Key": key}, json=person())
        rb = await client.post("/v1/registrants", headers={**b.headers, "Idempotency-Key": key}, json=person())
        assert ra.status_code == rb.status_code == 201 and ra.json()["id"] != rb.json()["id"]
        r = await client.post("/v1/registrants", headers={**a.headers, "Idempotency-Key": "k" * 256}, json=person())
        assert r.status_code == 422

    async def test_failed_request_does_not_keep_the_key(self, client, make_user):
        staff = await make_user("staff")
        headers = {**staff.headers, "Idempotency-Key": ext_id()}
        assert (await client.post("/v1/registrants", headers=headers, json=person(phone="1"))).status_code == 422
        assert (await client.post("/v1/registrants", headers=headers, json=person())).status_code == 201

    async def test_key_is_kept_24_hours(self, client, make_user, clock):
        staff = await make_user("staff")
        key = ext_id()

        async def post(body: dict) -> int:
            token = (await password_login(client, staff.email, staff.password)).json()["access_token"]
            headers = {**bearer(token), "Idempotency-Key": key}
            return (await client.post("/v1/registrants", headers=headers, json=body)).status_code

        assert await post(person()) == 201
        clock.advance(timedelta(hours=23, minutes=50))
        assert await post(person(given_name="X")) == 422
        clock.advance(timedelta(hours=1))
        assert await post(person(given_name="X")) == 201

    @pytest.mark.commits
    async def test_ten_concurrent_posts_make_one_row(self, live_server, make_user, app):
        staff = await make_user("staff")
        key, body = ext_id(), person(family_name=f"Race{ext_id()}")
        headers = {**staff.headers, "Idempotency-Key": key}
        async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
            responses = await asyncio.gather(*(http.post("/v1/registrants", headers=headers, json=body)
                                               for _ in range(10)))
        assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
        assert len({r.text for r in responses}) == 1
        async with app.state.db.sessionmaker() as session:
            made = await session.execute(select(func.count()).where(Registrant.family_name == body["family_name"]))
            keys = await session.execute(select(func.count()).where(IdempotencyKey.key == key))
            assert made.scalar_one() == 1 and keys.scalar_one() == 1


class TestConcurrentWrites:
    @pytest.mark.commits
    async def test_two_patches_with_one_etag_give_one_200_and_one_412(self, live_server, make_user, create):
        staff = await make_user("staff")
        async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
            for _ in range(3):
                created = await create(staff)
                url = f"/v1/registrants/{created['id']}"
                headers = {**staff.headers, "If-Match": '"1"'}
                a, b = await asyncio.gather(http.patch(url, headers=headers, json={"given_name": "A"}),
                                            http.patch(url, headers=headers, json={"given_name": "B"}))
                assert sorted([a.status_code, b.status_code]) == [200, 412], (a.text, b.text)
                winner = a if a.status_code == 200 else b
                current = await http.get(url, headers=staff.headers)
                assert current.json()["given_name"] == winner.json()["given_name"]
                assert current.json()["version"] == 2

    @pytest.mark.commits
    async def test_concurrent_upserts_of_one_ref_make_one_registrant(self, live_server, make_client, app, settings):
        booking = await make_client("integration", "booking")
        ref = ext_id()
        async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
            responses = await asyncio.gather(*(http.put(f"/v1/registrants/by-ref/booking/{ref}", headers=booking.headers,
                                                        json=person(given_name=f"N{i}")) for i in range(8)))
            assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
            assert [r.status_code for r in responses].count(201) == 1
            assert len({r.json()["id"] for r in responses}) == 1
            rid = responses[0].json()["id"]
            # Each change is one version: the last answer given is what is stored, with a history entry per version.
            final = max((r.json() for r in responses), key=lambda body: body["version"])
            current = await http.get(f"/v1/registrants/{rid}", headers=booking.headers)
            assert current.json() == final
            history = (await http.get(f"/v1/registrants/{rid}/history", headers=booking.headers)).json()["items"]
        assert [h["version"] for h in history] == list(range(1, final["version"] + 1))
        # The live server's sequencer seals on PostgreSQL (its writers on SQLite): seal what it has not reached yet.
        await Sequencer(app.state.db, settings.model_copy(update={"audit_sealing": "sequencer"})).drain(wait=True)
        async with app.state.db.sessionmaker() as session:
            entries = [e for e in (await session.execute(select(AuditEntry).where(
                AuditEntry.resource_id == rid, AuditEntry.action.in_(["registrant.create", "registrant.update"]))
                .order_by(AuditEntry.seq))).scalars()]
        # One entry per request, in the chain: the creation first, then one update each (with the fields it changed).
        assert [e.action for e in entries] == ["registrant.create"] + ["registrant.update"] * 7
        assert all(e.registrant_ids == [rid] for e in entries)
        changed = [e for e in entries[1:] if e.details["fields"]]
        assert len(changed) == final["version"] - 1


class TestAuditChainAfterConcurrency:
    @pytest.mark.commits
    async def test_chain_verifies(self, client, controller, live_server):
        # Runs after the concurrent tests above: every entry they wrote must still chain.
        r = await client.get("/v1/audit/verify", headers=controller.headers)
        assert r.status_code == 200 and r.json()["ok"] is True, r.text

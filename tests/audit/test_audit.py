"""/v1/audit: one entry per action, filters, and a chain that shows any tampering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.auth.principal import SYSTEM
from tests.audit.tampering import tampering
from tests.conftest import PASSWORD, TEST_SECRET, bearer, unique_email


async def entries_of(client, controller, request_id: str) -> list[dict]:
    r = await client.get("/v1/audit", headers=controller.headers, params={"request_id": request_id})
    assert r.status_code == 200
    return r.json()["items"]


def rid() -> dict[str, str]:
    return {"X-Request-Id": uuid.uuid4().hex}


class TestAuthMatrix:
    @pytest.mark.parametrize("path", ["/v1/audit", "/v1/audit/verify"])
    async def test_anonymous_401(self, client, path):
        assert (await client.get(path)).status_code == 401

    @pytest.mark.parametrize("role", ["staff", "viewer", "integration", "automation"])
    @pytest.mark.parametrize("path", ["/v1/audit", "/v1/audit/verify"])
    async def test_other_roles_403(self, client, accounts, role, path):
        assert (await client.get(path, headers=accounts[role].headers)).status_code == 403

    @pytest.mark.parametrize("role", ["controller", "auditor"])
    @pytest.mark.parametrize("path", ["/v1/audit", "/v1/audit/verify"])
    async def test_controller_and_auditor_200(self, client, accounts, role, path):
        assert (await client.get(path, headers=accounts[role].headers)).status_code == 200


class TestOneEntryPerAction:
    async def _one(self, client, controller, method, path, expected_action, **kwargs) -> dict:
        headers = rid()
        kwargs["headers"] = {**kwargs.get("headers", {}), **headers}
        r = await client.request(method, path, **kwargs)
        assert r.status_code < 500
        entries = await entries_of(client, controller, headers["X-Request-Id"])
        assert [e["action"] for e in entries] == [expected_action]
        return entries[0]

    async def test_logins(self, client, controller):
        ok = await self._one(client, controller, "POST", "/v1/auth/token", "auth.login",
                             data={"grant_type": "password", "username": controller.email, "password": PASSWORD})
        assert ok["outcome"] == "success"
        assert ok["actor_id"] == controller.id
        assert ok["client_addr"] == "198.51.100.7"
        bad = await self._one(client, controller, "POST", "/v1/auth/token", "auth.login",
                              data={"grant_type": "password", "username": "Someone.Else@example.com",
                                    "password": "wrong password"})
        assert bad["outcome"] == "failure"
        assert bad["actor_name"] == "s***@example.com"  # never the full address of a stranger

    async def test_account_and_client_changes(self, client, controller, make_user, make_client):
        user, machine = await make_user("viewer"), await make_client("integration")
        h = controller.headers
        created = await self._one(client, controller, "POST", "/v1/users", "user.create", headers=h,
                                  json={"email": unique_email(), "full_name": "X", "role": "staff"})
        assert created["actor_id"] == controller.id and created["role"] == "controller"
        await self._one(client, controller, "GET", f"/v1/users/{user.id}", "user.read", headers=h)
        await self._one(client, controller, "GET", "/v1/users", "user.list", headers=h)
        await self._one(client, controller, "PATCH", f"/v1/users/{user.id}", "user.update", headers=h,
                        json={"full_name": "Y"})
        await self._one(client, controller, "POST", f"/v1/users/{user.id}/password-reset", "user.password_reset",
                        headers=h)
        await self._one(client, controller, "POST", "/v1/clients", "client.create", headers=h,
                        json={"name": "n", "role": "automation", "system": "dsr"})
        await self._one(client, controller, "GET", f"/v1/clients/{machine.id}", "client.read", headers=h)
        await self._one(client, controller, "GET", "/v1/clients", "client.list", headers=h)
        await self._one(client, controller, "POST", f"/v1/clients/{machine.id}/rotate", "client.rotate", headers=h)
        await self._one(client, controller, "POST", f"/v1/clients/{machine.id}/revoke", "client.revoke", headers=h)

    async def test_password_change(self, client, controller, make_user):
        user = await make_user("auditor")
        await self._one(client, controller, "POST", "/v1/auth/password", "auth.password_change",
                        headers=user.headers, json={"current_password": PASSWORD, "new_password": "another long one!"})

    async def test_refused_request_writes_nothing(self, client, controller):
        headers = {**rid(), **controller.headers}
        r = await client.post("/v1/users", headers=headers, json={"email": "bad", "full_name": "X", "role": "staff"})
        assert r.status_code == 422
        assert await entries_of(client, controller, headers["X-Request-Id"]) == []


class TestListing:
    async def test_filters_and_pagination(self, client, controller, make_user):
        user = await make_user("staff")
        r = await client.get("/v1/audit", headers=controller.headers,
                             params={"actor_id": user.id, "action": "auth.password_change"})
        assert [e["actor_id"] for e in r.json()["items"]] == [user.id]
        page = await client.get("/v1/audit", headers=controller.headers, params={"limit": 3})
        items = page.json()["items"]
        assert [e["seq"] for e in items] == sorted((e["seq"] for e in items), reverse=True)
        nxt = await client.get("/v1/audit", headers=controller.headers,
                               params={"limit": 3, "cursor": page.json()["next_cursor"]})
        assert nxt.json()["items"][0]["seq"] < items[-1]["seq"]
        since = items[0]["at"]
        later = await client.get("/v1/audit", headers=controller.headers, params={"from": since})
        assert all(e["at"] >= since for e in later.json()["items"])


async def _verify_inside(app, tamper: str, is_postgres: bool) -> audit_service.Verification:
    """Tamper inside a savepoint, verify in it, then roll it back so the real chain stays intact."""
    async with tampering(app, is_postgres) as conn:
        await conn.execute(text(tamper))
        return await audit_service.verify(AsyncSession(bind=conn))


class TestVerification:
    async def test_intact_chain_verifies(self, client, controller):
        r = await client.get("/v1/audit/verify", headers=controller.headers)
        assert r.json()["ok"] is True
        assert r.json()["first_broken"] is None
        assert r.json()["entries"] > 0

    @pytest.mark.parametrize("statement", [
        "UPDATE audit_entry SET action = 'user.read' WHERE seq = {seq}",
        "UPDATE audit_entry SET details = '{{\"count\": 9}}' WHERE seq = {seq}",
        "UPDATE audit_entry SET actor_name = 'someone' WHERE seq = {seq}",
        "DELETE FROM audit_entry WHERE seq = {seq}",
    ])
    async def test_editing_or_deleting_an_entry_is_reported(self, app, client, controller, is_postgres, statement):
        await client.get("/v1/users", headers=controller.headers)  # make sure there are entries after
        last = (await client.get("/v1/audit", headers=controller.headers, params={"limit": 1})).json()["items"][0]
        target = last["seq"] - 3
        await client.get("/v1/users", headers=controller.headers)
        result = await _verify_inside(app, statement.format(seq=target), is_postgres)
        assert result.ok is False
        assert result.first_broken == target

    async def test_removing_the_newest_entry_is_reported(self, app, client, controller, is_postgres):
        await client.get("/v1/users", headers=controller.headers)
        result = await _verify_inside(app, "DELETE FROM audit_entry WHERE seq = (SELECT MAX(seq) FROM audit_entry)",
                                      is_postgres)
        assert result.ok is False

    async def test_the_database_refuses_update_and_delete(self, app, is_postgres):
        statements = ["UPDATE audit_entry SET action = 'x'", "DELETE FROM audit_entry"]
        if is_postgres:
            statements.append("TRUNCATE audit_entry CASCADE")
        for statement in statements:
            async with app.state.db.engine.connect() as conn:
                with pytest.raises(DBAPIError, match="append-only"):
                    await conn.execute(text(statement))

    @pytest.mark.commits
    def test_cli_audit_verify(self, database_url):
        env = {**os.environ, "REKISTERI_DATABASE_URL": database_url, "REKISTERI_JWT_SECRET": TEST_SECRET}
        cli = Path(sys.executable).with_name("rekisteri")
        done = subprocess.run([str(cli), "audit-verify"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1])["ok"] is True


class TestPurge:
    async def test_purging_the_oldest_entries_keeps_the_chain_verifiable(self, app, clock):
        # Later than anything other tests wrote, even with a clock they moved forward.
        clock.advance(timedelta(days=400))
        async with app.state.db.sessionmaker() as session:
            audit_service.record(session, actor=SYSTEM, action="test.marker")
            await session.commit()
        cutoff = clock.utcnow()
        async with app.state.db.sessionmaker() as session:
            audit_service.record(session, actor=SYSTEM, action="test.kept")
            await session.commit()
        async with app.state.db.sessionmaker() as session:
            would = await audit_service.purge_before(session, cutoff=cutoff, dry_run=True)
            removed = await audit_service.purge_before(session, cutoff=cutoff)
            await session.commit()
        assert removed == would > 0
        async with app.state.db.sessionmaker() as session:
            assert await audit_service.purge_before(session, cutoff=cutoff) == 0  # idempotent
            result = await audit_service.verify(session)
        assert result.ok, result
        assert result.entries == 1  # only the entry written after the cutoff is left


def _sealed_verification(http: httpx.Client, token: str) -> tuple[dict, int]:
    """GET /v1/audit/verify once the live server's sequencer has sealed everything written so far; and the calls made
    (each call's own audit entry is sealed after it answers)."""
    deadline, calls = time.monotonic() + 60, 0
    while True:
        result, calls = http.get("/v1/audit/verify", headers=bearer(token)).json(), calls + 1
        if result["unsealed"] == 0 or time.monotonic() > deadline:
            return result, calls
        time.sleep(0.2)


class TestConcurrentWriters:
    @pytest.mark.commits
    def test_many_workers_logging_in_at_once_keep_the_chain_unbroken(self, live_server, accounts):
        machine = accounts["integration"]
        # The live server shares the database and seals with its sequencer; read the head before and after.
        with httpx.Client(base_url=live_server, timeout=60) as http:
            ctrl = http.post("/v1/auth/token", data={"grant_type": "password", "username": accounts["controller"].email,
                                                     "password": PASSWORD}).json()["access_token"]
            before, _ = _sealed_verification(http, ctrl)

        def logins(_: int) -> list[int]:
            with httpx.Client(base_url=live_server, timeout=60) as http:
                return [http.post("/v1/auth/token", data={"grant_type": "client_credentials", "client_id": machine.id,
                                                          "client_secret": machine.secret}).status_code
                        for _ in range(50)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = [s for batch in pool.map(logins, range(8)) for s in batch]
        assert statuses == [200] * 400
        with httpx.Client(base_url=live_server, timeout=60) as http:
            after, calls = _sealed_verification(http, ctrl)
        assert after["ok"] is True, after
        assert after["unsealed"] == 0, after
        assert after["sealed_head"]["sequence"] == before["sealed_head"]["sequence"] + after["entries"] - before["entries"]
        # 400 logins, the first verify's own entry, and those of the calls made while waiting for the sequencer.
        assert after["entries"] - before["entries"] == 400 + 1 + (calls - 1)

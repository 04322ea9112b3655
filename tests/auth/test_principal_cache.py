"""The per-process cache of token subjects (REKISTERI_PRINCIPAL_CACHE_SECONDS, at most 1 s): a revocation made in
this process acts at once; one made elsewhere acts when the cached read is older than the cache time."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from app.auth import service as auth_service
from tests.conftest import PASSWORD


@pytest.fixture
def cached(app):
    """The app with the production default of one second, and an empty cache before and after."""
    app.state.settings = app.state.settings.model_copy(update={"principal_cache_seconds": 1.0})
    auth_service._known.clear()
    yield app
    auth_service._known.clear()


class TestPrincipalCache:
    async def test_a_revocation_in_this_process_acts_at_once(self, cached, client, controller, make_client, make_user):
        machine, person = await make_client("integration"), await make_user("staff")
        for account in (machine, person):
            assert (await client.get("/v1/auth/me", headers=account.headers)).status_code == 200
        assert {machine.id, person.id} <= {str(k) for k in auth_service._known}
        assert (await client.post(f"/v1/clients/{machine.id}/revoke", headers=controller.headers)).status_code == 200
        assert (await client.get("/v1/auth/me", headers=machine.headers)).status_code == 401
        r = await client.patch(f"/v1/users/{person.id}", headers=controller.headers, json={"active": False})
        assert r.status_code == 200
        assert (await client.get("/v1/auth/me", headers=person.headers)).status_code == 401

    async def test_a_revocation_elsewhere_acts_once_the_cached_read_expires(self, cached, app, client, make_user,
                                                                           monkeypatch):
        person = await make_user("staff")
        assert (await client.get("/v1/auth/me", headers=person.headers)).status_code == 200
        # Another process (here: plain SQL) revokes the account's tokens.
        async with app.state.db.engine.begin() as conn:
            await conn.execute(text("UPDATE user_account SET token_generation = token_generation + 1 WHERE id = :id"),
                               {"id": person.id if app.state.db.engine.dialect.name == "postgresql"
                                else person.id.replace("-", "")})
        assert (await client.get("/v1/auth/me", headers=person.headers)).status_code == 200  # still trusted
        later = time.monotonic() + 1.01  # the cache time (at most 1 s) has passed
        monkeypatch.setattr(auth_service.time, "monotonic", lambda: later)
        assert (await client.get("/v1/auth/me", headers=person.headers)).status_code == 401

    async def test_a_password_change_revokes_the_old_token_at_once(self, cached, client, make_user):
        person = await make_user("staff")
        assert (await client.get("/v1/auth/me", headers=person.headers)).status_code == 200
        r = await client.post("/v1/auth/password", headers=person.headers,
                              json={"current_password": PASSWORD, "new_password": "another long one, quite!"})
        assert r.status_code == 200, r.text
        assert (await client.get("/v1/auth/me", headers=person.headers)).status_code == 401


class TestOneReadAtATime:
    async def test_requests_missing_the_cache_together_wait_for_the_one_read(self, cached, app, client, make_user):
        person = await make_user("staff")
        settings = app.state.settings
        auth_service._known.clear()
        assert await auth_service.principal_after_read(settings, token=person.token) is None  # no read under way
        async with app.state.db.sessionmaker() as session:
            first = asyncio.create_task(auth_service.principal_for_token(session, settings, token=person.token))
            await asyncio.sleep(0)  # the first request has begun reading its subject from the database
            waited = await auth_service.principal_after_read(settings, token=person.token)
            assert waited == await first
        assert waited[0].id is not None and str(waited[0].id) == person.id
        assert await auth_service.principal_after_read(settings, token=person.token) is None  # the read is over

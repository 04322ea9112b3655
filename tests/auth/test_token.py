"""POST /v1/auth/token: both grants, throttling and lockout."""

from __future__ import annotations

import base64
from datetime import timedelta

from tests.conftest import PASSWORD, password_login, unique_email


class TestPasswordGrant:
    async def test_valid_login_returns_bearer_token(self, client, accounts):
        staff = accounts["staff"]
        r = await password_login(client, staff.email, PASSWORD)
        assert r.status_code == 200
        body = r.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        assert "registrants:read" in body["scope"].split()
        assert "users:admin" not in body["scope"].split()

    async def test_email_is_case_insensitive(self, client, accounts):
        r = await password_login(client, accounts["auditor"].email.upper(), PASSWORD)
        assert r.status_code == 200

    async def test_wrong_password_and_unknown_account_answer_alike(self, client, accounts):
        wrong = await password_login(client, accounts["viewer"].email, "not the password at all")
        unknown = await password_login(client, unique_email("nobody"), "not the password at all")
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.headers["content-type"] == unknown.headers["content-type"] == "application/problem+json"
        for key in ("type", "title", "detail", "error"):
            assert wrong.json()[key] == unknown.json()[key]

    async def test_missing_password_is_422_naming_the_field(self, client):
        r = await client.post("/v1/auth/token", data={"grant_type": "password", "username": "a@example.com"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "password"]

    async def test_unknown_grant_type_is_422(self, client):
        r = await client.post("/v1/auth/token", data={"grant_type": "implicit"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "grant_type"]

    async def test_json_body_is_415(self, client):
        r = await client.post("/v1/auth/token", json={"grant_type": "password"})
        assert r.status_code == 415
        assert r.headers["content-type"] == "application/problem+json"

    async def test_scope_can_be_narrowed_but_not_widened(self, client, accounts):
        staff = accounts["staff"]
        narrow = await client.post("/v1/auth/token", data={"grant_type": "password", "username": staff.email,
                                                           "password": PASSWORD, "scope": "registrants:read"})
        assert narrow.status_code == 200
        assert narrow.json()["scope"] == "registrants:read"
        wide = await client.post("/v1/auth/token", data={"grant_type": "password", "username": staff.email,
                                                         "password": PASSWORD, "scope": "users:admin"})
        assert wide.status_code == 422
        assert wide.json()["error"] == "invalid_scope"

    async def test_narrowed_token_is_refused_outside_its_scope(self, client, controller):
        narrow = await client.post("/v1/auth/token", data={"grant_type": "password", "username": controller.email,
                                                           "password": PASSWORD, "scope": "audit:read"})
        headers = {"Authorization": f"Bearer {narrow.json()['access_token']}"}
        assert (await client.get("/v1/audit", headers=headers)).status_code == 200
        assert (await client.get("/v1/users", headers=headers)).status_code == 403


class TestLockout:
    async def test_five_failures_lock_the_account_for_fifteen_minutes(self, client, make_user, clock):
        user = await make_user("staff")
        for _ in range(5):
            assert (await password_login(client, user.email, "wrong password!!")).status_code == 401
        locked = await password_login(client, user.email, PASSWORD)
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 901
        clock.advance(timedelta(minutes=14))
        assert (await password_login(client, user.email, PASSWORD)).status_code == 429
        clock.advance(timedelta(minutes=1, seconds=2))
        assert (await password_login(client, user.email, PASSWORD)).status_code == 200

    async def test_unknown_account_locks_the_same_way(self, client):
        email = unique_email("ghost")
        for _ in range(5):
            assert (await password_login(client, email, "wrong password!!")).status_code == 401
        r = await password_login(client, email, "wrong password!!")
        assert r.status_code == 429
        assert "retry-after" in r.headers

    async def test_failures_outside_the_window_do_not_add_up(self, client, make_user, clock):
        user = await make_user("viewer")
        for _ in range(4):
            await password_login(client, user.email, "wrong password!!")
        clock.advance(timedelta(minutes=16))
        for _ in range(4):
            await password_login(client, user.email, "wrong password!!")
        assert (await password_login(client, user.email, PASSWORD)).status_code == 200

    async def test_success_resets_the_count(self, client, make_user):
        user = await make_user("viewer")
        for _ in range(4):
            await password_login(client, user.email, "wrong password!!")
        assert (await password_login(client, user.email, PASSWORD)).status_code == 200
        for _ in range(4):
            await password_login(client, user.email, "wrong password!!")
        assert (await password_login(client, user.email, PASSWORD)).status_code == 200


class TestClientCredentials:
    async def test_form_credentials(self, client, make_client):
        made = await make_client("integration", "webshop")
        r = await client.post("/v1/auth/token", data={"grant_type": "client_credentials", "client_id": made.id,
                                                      "client_secret": made.secret})
        assert r.status_code == 200
        me = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
        assert me.json()["role"] == "integration"
        assert me.json()["system"] == "webshop"

    async def test_http_basic_credentials(self, client, make_client):
        made = await make_client("automation", "dsr-bot")
        basic = base64.b64encode(f"{made.id}:{made.secret}".encode()).decode()
        r = await client.post("/v1/auth/token", data={"grant_type": "client_credentials"},
                              headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 200
        assert "requests:write" in r.json()["scope"].split()

    async def test_wrong_secret_is_401_invalid_client(self, client, make_client):
        made = await make_client("integration")
        r = await client.post("/v1/auth/token", data={"grant_type": "client_credentials", "client_id": made.id,
                                                      "client_secret": "nope"})
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"

    async def test_malformed_client_id_is_401_not_500(self, client):
        r = await client.post("/v1/auth/token", data={"grant_type": "client_credentials", "client_id": "not-a-uuid",
                                                      "client_secret": "x"})
        assert r.status_code == 401

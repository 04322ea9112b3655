"""/v1/users, /v1/clients and the one-time-password flow."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import ALL_ROLES, PASSWORD, bearer, password_login, unique_email

ADMIN_ENDPOINTS = [
    ("GET", "/v1/users", None),
    ("POST", "/v1/users", {"email": "matrix@example.com", "full_name": "M", "role": "staff"}),
    ("GET", "/v1/users/{uid}", None),
    ("PATCH", "/v1/users/{uid}", {"full_name": "Renamed"}),
    ("POST", "/v1/users/{uid}/password-reset", None),
    ("GET", "/v1/clients", None),
    ("POST", "/v1/clients", {"name": "m", "role": "integration", "system": "booking"}),
    ("GET", "/v1/clients/{cid}", None),
    ("POST", "/v1/clients/{cid}/rotate", None),
    ("POST", "/v1/clients/{cid}/revoke", None),
]


class TestAdminAuthMatrix:
    @pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
    async def test_anonymous_is_401(self, client, method, path, body):
        r = await client.request(method, path.format(uid=uuid.uuid4(), cid=uuid.uuid4()), json=body)
        assert r.status_code == 401

    @pytest.mark.parametrize("role", [r for r in ALL_ROLES if r != "controller"])
    @pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
    async def test_other_roles_are_403(self, client, accounts, role, method, path, body):
        r = await client.request(method, path.format(uid=accounts["staff"].id, cid=accounts["integration"].id),
                                 json=body, headers=accounts[role].headers)
        assert r.status_code == 403
        assert r.json()["type"].endswith("forbidden")

    @pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
    async def test_controller_is_2xx(self, client, controller, make_user, make_client, method, path, body):
        target_user, target_client = await make_user("viewer"), await make_client("integration")
        if body and "email" in body:
            body = {**body, "email": unique_email("matrix")}
        r = await client.request(method, path.format(uid=target_user.id, cid=target_client.id), json=body,
                                 headers=controller.headers)
        assert r.status_code in (200, 201), r.text


class TestOneTimePassword:
    async def test_full_flow(self, client, controller):
        email = unique_email("otp")
        created = await client.post("/v1/users", headers=controller.headers,
                                    json={"email": email, "full_name": "Olli Otp", "role": "staff"})
        assert created.status_code == 201
        otp = created.json()["one_time_password"]
        assert len(otp) >= 12
        assert created.json()["must_change_password"] is True

        issued = await password_login(client, email, otp)
        assert issued.status_code == 200
        assert issued.json()["scope"] == "password:change"
        otp_headers = bearer(issued.json()["access_token"])
        for path in ("/v1/auth/me", "/v1/audit", "/v1/users"):
            refused = await client.get(path, headers=otp_headers)
            assert refused.status_code == 403
            assert refused.json()["type"].endswith("password-change-required")
            assert "/v1/auth/password" in refused.json()["detail"]

        same = await client.post("/v1/auth/password", headers=otp_headers,
                                 json={"current_password": otp, "new_password": otp})
        assert same.status_code == 422
        short = await client.post("/v1/auth/password", headers=otp_headers,
                                  json={"current_password": otp, "new_password": "short"})
        assert short.status_code == 422
        assert short.json()["errors"][0]["loc"] == ["body", "new_password"]
        wrong = await client.post("/v1/auth/password", headers=otp_headers,
                                  json={"current_password": "not it at all", "new_password": PASSWORD})
        assert wrong.status_code == 422
        assert wrong.json()["errors"][0]["loc"] == ["body", "current_password"]

        changed = await client.post("/v1/auth/password", headers=otp_headers,
                                    json={"current_password": otp, "new_password": PASSWORD})
        assert changed.status_code == 200
        assert (await client.get("/v1/auth/me", headers=bearer(changed.json()["access_token"]))).status_code == 200
        assert (await client.get("/v1/auth/me", headers=otp_headers)).status_code == 401
        assert (await password_login(client, email, otp)).status_code == 401
        assert (await password_login(client, email, PASSWORD)).status_code == 200

    async def test_reset_gives_a_new_one_time_password_and_revokes_tokens(self, client, controller, make_user):
        user = await make_user("staff")
        reset = await client.post(f"/v1/users/{user.id}/password-reset", headers=controller.headers)
        assert reset.status_code == 200
        assert (await client.get("/v1/auth/me", headers=user.headers)).status_code == 401
        assert (await password_login(client, user.email, PASSWORD)).status_code == 401
        issued = await password_login(client, user.email, reset.json()["one_time_password"])
        assert issued.json()["scope"] == "password:change"


class TestUsers:
    async def test_email_is_unique_case_insensitively(self, client, controller):
        email = unique_email("dup")
        first = await client.post("/v1/users", headers=controller.headers,
                                  json={"email": email, "full_name": "A", "role": "staff"})
        assert first.status_code == 201
        assert first.json()["email"] == email.lower()
        again = await client.post("/v1/users", headers=controller.headers,
                                  json={"email": email.upper(), "full_name": "B", "role": "staff"})
        assert again.status_code == 409

    @pytest.mark.parametrize("body", [
        {"email": "not-an-email", "full_name": "A", "role": "staff"},
        {"email": "a@example.com", "full_name": "A", "role": "integration"},
        {"email": "a@example.com", "full_name": "", "role": "staff"},
        {"email": "a@example.com", "full_name": "A", "role": "staff", "active": False},
        {"email": "a@example.com", "full_name": "A", "role": "staff", "password_hash": "x"},
        {"full_name": "A", "role": "staff"},
    ])
    async def test_bad_input_is_422_naming_the_field(self, client, controller, body):
        r = await client.post("/v1/users", headers=controller.headers, json=body)
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["loc"][0] == "body"

    async def test_list_is_paginated(self, client, controller, make_user):
        for _ in range(3):
            await make_user("viewer")
        first = await client.get("/v1/users", headers=controller.headers, params={"limit": 2})
        assert first.status_code == 200
        assert len(first.json()["items"]) == 2
        cursor = first.json()["next_cursor"]
        assert cursor
        second = await client.get("/v1/users", headers=controller.headers, params={"limit": 2, "cursor": cursor})
        first_ids = {u["id"] for u in first.json()["items"]}
        assert not first_ids & {u["id"] for u in second.json()["items"]}
        assert "password_hash" not in first.json()["items"][0]

    async def test_bad_cursor_is_422(self, client, controller):
        r = await client.get("/v1/users", headers=controller.headers, params={"cursor": "!!!"})
        assert r.status_code == 422

    async def test_the_last_controller_cannot_be_demoted(self, client, controller):
        r = await client.patch(f"/v1/users/{controller.id}", headers=controller.headers, json={"active": False})
        assert r.status_code == 409
        r = await client.patch(f"/v1/users/{controller.id}", headers=controller.headers, json={"role": "staff"})
        assert r.status_code == 409

    async def test_unknown_user_is_404(self, client, controller):
        r = await client.get(f"/v1/users/{uuid.uuid4()}", headers=controller.headers)
        assert r.status_code == 404


class TestClients:
    async def test_secret_is_shown_once_and_rotation_replaces_it(self, client, controller, make_client):
        made = await make_client("integration", "webshop")
        shown = await client.get(f"/v1/clients/{made.id}", headers=controller.headers)
        assert "client_secret" not in shown.json()
        rotated = await client.post(f"/v1/clients/{made.id}/rotate", headers=controller.headers)
        assert rotated.status_code == 200
        new_secret = rotated.json()["client_secret"]
        old = await client.post("/v1/auth/token", data={"grant_type": "client_credentials", "client_id": made.id,
                                                        "client_secret": made.secret})
        assert old.status_code == 401
        assert (await client.get("/v1/auth/me", headers=made.headers)).status_code == 401
        new = await client.post("/v1/auth/token", data={"grant_type": "client_credentials", "client_id": made.id,
                                                        "client_secret": new_secret})
        assert new.status_code == 200

    async def test_revoked_client_cannot_get_tokens(self, client, controller, make_client):
        made = await make_client("automation")
        assert (await client.post(f"/v1/clients/{made.id}/revoke", headers=controller.headers)).status_code == 200
        r = await client.post("/v1/auth/token", data={"grant_type": "client_credentials", "client_id": made.id,
                                                      "client_secret": made.secret})
        assert r.status_code == 401
        assert (await client.post(f"/v1/clients/{made.id}/rotate", headers=controller.headers)).status_code == 409

    @pytest.mark.parametrize("body", [
        {"name": "x", "role": "staff", "system": "booking"},
        {"name": "x", "role": "integration", "system": "Not Valid!"},
        {"name": "x", "role": "integration"},
        {"name": "x", "role": "integration", "system": "booking", "secret_hash": "x"},
    ])
    async def test_bad_input_is_422(self, client, controller, body):
        r = await client.post("/v1/clients", headers=controller.headers, json=body)
        assert r.status_code == 422

"""Accounts you cannot lose: lockout per account and address, the address throttle, resets lifting locks,
trusted proxies, password strength, viewer clients and `GET /v1/auth/me`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.core.middleware import TrustedProxies
from tests.conftest import PASSWORD, bearer, password_login, unique_email

WRONG = "wrong password!!"


@asynccontextmanager
async def from_address(app, address: str, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose TCP peer is `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test", headers=headers) as http:
        yield http


class TestLockoutPerAccountAndAddress:
    async def test_failures_elsewhere_do_not_lock_the_owner_out(self, app, client, make_user):
        user = await make_user("staff")
        async with from_address(app, "198.18.17.66") as attacker:
            for _ in range(5):
                assert (await password_login(attacker, user.email, WRONG)).status_code == 401
            assert (await password_login(attacker, user.email, PASSWORD)).status_code == 429
        assert (await password_login(client, user.email, PASSWORD)).status_code == 200

    async def test_one_address_guessing_over_many_accounts_is_throttled(self, app, settings, make_user):
        users = [await make_user("viewer") for _ in range(4)]
        app.state.settings = settings.model_copy(update={"login_max_failures_per_address": 3})  # restored after
        async with from_address(app, "198.18.17.77") as guesser:
            for user in users[:3]:
                assert (await password_login(guesser, user.email, WRONG)).status_code == 401
            refused = await password_login(guesser, users[3].email, PASSWORD)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        async with from_address(app, "198.18.17.78") as other:
            assert (await password_login(other, users[3].email, PASSWORD)).status_code == 200

    async def test_a_controllers_reset_lifts_the_lock(self, client, controller, make_user):
        user = await make_user("staff")
        for _ in range(5):
            await password_login(client, user.email, WRONG)
        assert (await password_login(client, user.email, PASSWORD)).status_code == 429
        reset = await client.post(f"/v1/users/{user.id}/password-reset", headers=controller.headers)
        assert reset.status_code == 200
        issued = await password_login(client, user.email, reset.json()["one_time_password"])
        assert issued.status_code == 200 and issued.json()["scope"] == "password:change"


class TestTrustedProxies:
    async def test_the_forwarded_address_counts_behind_a_trusted_proxy(self, app, make_user):
        user = await make_user("staff")
        async with from_address(app, "127.0.0.1", **{"X-Forwarded-For": "198.18.29.10"}) as via_proxy:
            for _ in range(5):
                await password_login(via_proxy, user.email, WRONG)
            assert (await password_login(via_proxy, user.email, PASSWORD)).status_code == 429
        async with from_address(app, "127.0.0.1", **{"X-Forwarded-For": "198.18.29.11"}) as owner:
            assert (await password_login(owner, user.email, PASSWORD)).status_code == 200

    async def test_an_untrusted_peer_cannot_choose_its_address(self, app, make_user):
        user = await make_user("staff")
        async with from_address(app, "198.18.17.90", **{"X-Forwarded-For": "198.18.29.20"}) as spoofer:
            for _ in range(5):
                await password_login(spoofer, user.email, WRONG)
        # The failures were counted against the peer, not the address it claimed.
        async with from_address(app, "127.0.0.1", **{"X-Forwarded-For": "198.18.29.20"}) as claimed:
            assert (await password_login(claimed, user.email, PASSWORD)).status_code == 200

    @pytest.mark.parametrize(("peer", "header", "seen"), [
        ("127.0.0.1", b"198.18.29.1", "198.18.29.1"),
        ("127.0.0.1", b"198.51.100.1, 198.18.29.1", "198.18.29.1"),  # the nearest hop not ours
        ("127.0.0.1", b"198.18.29.1, 10.0.0.5", "198.18.29.1"),       # 10.0.0.5 is a trusted proxy too
        ("127.0.0.1", b"10.0.0.4, 10.0.0.5", "10.0.0.4"),          # every hop trusted: the first
        ("198.18.17.1", b"198.18.29.1", "198.18.17.1"),              # untrusted peer: header ignored
        ("127.0.0.1", None, "127.0.0.1"),
    ])
    def test_address_rules(self, peer, header, seen):
        assert TrustedProxies(["127.0.0.1", "10.0.0.0/8"]).client_address(peer, header) == seen


async def _choose(client, controller, *, full_name: str, new_password: str) -> httpx.Response:
    """A new account logs in with its one-time password and tries to choose `new_password`."""
    email = unique_email("pw")
    created = await client.post("/v1/users", headers=controller.headers,
                                json={"email": email, "full_name": full_name, "role": "staff"})
    otp = created.json()["one_time_password"]
    token = (await password_login(client, email, otp)).json()["access_token"]
    return await client.post("/v1/auth/password", headers=bearer(token),
                             json={"current_password": otp, "new_password": new_password})


class TestPasswordStrength:
    @pytest.mark.parametrize("weak", ["Password123!", "qwertyuiop123", "salasana2026!"])
    async def test_a_guessable_password_is_a_clear_422(self, client, controller, weak):
        r = await _choose(client, controller, full_name="Heikki Heikko", new_password=weak)
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "new_password"]
        assert "too easy to guess" in r.json()["detail"]

    async def test_the_persons_own_name_counts_against_it(self, client, controller):
        # zxcvbn scores "Kivikasvo2026" 4 on its own, 1 for a person called Kivikasvo.
        r = await _choose(client, controller, full_name="Ilmari Kivikasvo", new_password="Kivikasvo2026")
        assert r.status_code == 422
        assert (await _choose(client, controller, full_name="Ilmari Kivikasvo",
                              new_password="Sammakko-Kivi-47")).status_code == 200


class TestViewerClients:
    async def test_a_dashboard_client_reads_statistics_and_metrics_only(self, client, make_client):
        viewer = await make_client("viewer", "grafana")
        me = (await client.get("/v1/auth/me", headers=viewer.headers)).json()
        assert me["role"] == "viewer" and set(me["scopes"]) == {"register:read", "stats:read", "metrics:read"}
        assert (await client.get("/metrics", headers=viewer.headers)).status_code == 200
        assert (await client.get("/v1/stats/requests", headers=viewer.headers)).status_code == 200
        for path in ("/v1/registrants", "/v1/requests", "/v1/audit", "/v1/waitlist"):
            assert (await client.get(path, headers=viewer.headers)).status_code == 403, path


class TestMe:
    async def test_a_person_sees_email_and_name(self, client, make_user):
        staff = await make_user("staff")
        me = (await client.get("/v1/auth/me", headers=staff.headers)).json()
        assert (me["kind"], me["email"], me["name"], me["system"]) == ("user", staff.email, "Test staff", None)

    async def test_a_client_sees_its_system(self, client, make_client):
        bot = await make_client("automation", "dsr-bot")
        me = (await client.get("/v1/auth/me", headers=bot.headers)).json()
        assert (me["kind"], me["system"], me["email"]) == ("client", "dsr-bot", None)

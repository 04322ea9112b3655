"""Token verification: every forged, stale or misplaced token is refused with 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.core import security
from app.core.config import Settings
from app.main import create_app
from tests.conftest import PASSWORD, TEST_SECRET, password_login


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(claims: dict, key: bytes | None, alg: str = "HS256") -> str:
    """A JWT built by hand, so the tests do not trust the library under test."""
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    signature = b"" if key is None else hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def claims_for(account_id: str, **overrides) -> dict:
    now = int(time.time())
    claims = {"sub": f"user:{account_id}", "role": "controller", "scope": "users:admin audit:read",
              "iss": "rekisteri", "aud": "rekisteri-api", "iat": now, "nbf": now, "exp": now + 600,
              "jti": str(uuid.uuid4()), "gen": 2}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def _me(client, token: str) -> httpx.Response:
    return await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


class TestForgedTokens:
    async def test_control_a_correctly_forged_token_is_accepted(self, client, controller):
        # Proves the forging helper is right, so the refusals below test the verifier.
        assert (await _me(client, forge(claims_for(controller.id), TEST_SECRET.encode()))).status_code == 200

    @pytest.mark.parametrize(
        ("name", "overrides", "key", "alg"),
        [
            ("alg none", {}, None, "none"),
            ("other key", {}, b"another-secret-" + b"x" * 40, "HS256"),
            ("expired", {"exp": int(time.time()) - 1}, TEST_SECRET.encode(), "HS256"),
            ("not yet valid", {"nbf": int(time.time()) + 300}, TEST_SECRET.encode(), "HS256"),
            ("wrong aud", {"aud": "someone-else"}, TEST_SECRET.encode(), "HS256"),
            ("wrong iss", {"iss": "evil"}, TEST_SECRET.encode(), "HS256"),
            ("missing exp", {"exp": None}, TEST_SECRET.encode(), "HS256"),
            ("missing jti", {"jti": None}, TEST_SECRET.encode(), "HS256"),
            ("stale generation", {"gen": 1}, TEST_SECRET.encode(), "HS256"),
            ("role claim lies", {"role": "staff"}, TEST_SECRET.encode(), "HS256"),
        ],
    )
    async def test_refused(self, client, controller, name, overrides, key, alg):
        r = await _me(client, forge(claims_for(controller.id, **overrides), key, alg))
        assert r.status_code == 401, name
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"].startswith("Bearer")

    async def test_garbage_token(self, client):
        assert (await _me(client, "not.a.jwt")).status_code == 401

    async def test_token_in_query_string_is_refused(self, client, controller):
        r = await client.get("/v1/auth/me", params={"access_token": controller.token})
        assert r.status_code == 401
        r = await client.get("/v1/auth/me", params={"access_token": controller.token}, headers=controller.headers)
        assert r.status_code == 401

    async def test_missing_header_is_401(self, client):
        r = await client.get("/v1/auth/me")
        assert r.status_code == 401
        assert r.json()["status"] == 401


class TestRevocation:
    async def test_deactivated_account_token_fails_at_once(self, client, controller, make_user):
        user = await make_user("staff")
        assert (await _me(client, user.token)).status_code == 200
        r = await client.patch(f"/v1/users/{user.id}", headers=controller.headers, json={"active": False})
        assert r.status_code == 200
        assert (await _me(client, user.token)).status_code == 401
        assert (await password_login(client, user.email, PASSWORD)).status_code == 401

    async def test_password_change_revokes_earlier_tokens(self, client, make_user):
        user = await make_user("auditor")
        old = user.token
        r = await client.post("/v1/auth/password", headers=user.headers,
                              json={"current_password": PASSWORD, "new_password": "a brand new passphrase"})
        assert r.status_code == 200
        assert (await _me(client, old)).status_code == 401
        assert (await _me(client, r.json()["access_token"])).status_code == 200

    async def test_role_change_revokes_tokens(self, client, controller, make_user):
        user = await make_user("staff")
        await client.patch(f"/v1/users/{user.id}", headers=controller.headers, json={"role": "viewer"})
        assert (await _me(client, user.token)).status_code == 401

    async def test_revoked_client_token_fails_at_once(self, client, controller, make_client):
        made = await make_client("integration")
        assert (await _me(client, made.token)).status_code == 200
        await client.post(f"/v1/clients/{made.id}/revoke", headers=controller.headers)
        assert (await _me(client, made.token)).status_code == 401


class TestVerifiedOnce:
    """A token's signature is checked once per process; its times at every use, and nothing carries over to a key,
    issuer or audience it was not checked against."""

    async def test_a_token_used_again_still_expires(self, client, make_user, clock):
        user = await make_user("staff")
        assert (await _me(client, user.token)).status_code == 200
        assert (await _me(client, user.token)).status_code == 200
        clock.advance(timedelta(days=2))
        r = await _me(client, user.token)
        assert r.status_code == 401, r.text

    def test_a_token_verified_under_one_key_is_refused_under_another(self, controller):
        token = forge(claims_for(controller.id), TEST_SECRET.encode())
        ours = Settings(database_url="sqlite://", jwt_secret=TEST_SECRET)
        other = Settings(database_url="sqlite://", jwt_secret="another-secret-" + "y" * 40)
        assert security.verify_token_cached(ours, token).sub == f"user:{controller.id}"
        assert security.verify_token_cached(ours, token).sub == f"user:{controller.id}"
        with pytest.raises(security.TokenError):
            security.verify_token_cached(other, token)
        with pytest.raises(security.TokenError):
            security.verify_token_cached(ours.model_copy(update={"jwt_audience": "someone-else"}), token)

    def test_a_token_not_yet_valid_is_refused_each_time(self, controller):
        token = forge(claims_for(controller.id, nbf=int(time.time()) + 300), TEST_SECRET.encode())
        ours = Settings(database_url="sqlite://", jwt_secret=TEST_SECRET)
        for _ in range(2):
            with pytest.raises(security.TokenError):
                security.verify_token_cached(ours, token)


@pytest.fixture(scope="module", params=["RS256", "ES256"])
def key_pair(request, tmp_path_factory):
    if request.param == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    folder = tmp_path_factory.mktemp(request.param)
    private = folder / "private.pem"
    public = folder / "public.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return request.param, private, public


class TestAsymmetricKeys:
    async def test_key_file_tokens_work_and_hs256_confusion_is_refused(self, settings, controller, key_pair):
        algorithm, private, public = key_pair
        rs_settings = Settings(database_url=settings.database_url, jwt_algorithm=algorithm,
                               jwt_private_key_file=private, jwt_public_key_file=public)
        rs_app = create_app(rs_settings)
        transport = httpx.ASGITransport(app=rs_app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test") as http:
                issued = await password_login(http, controller.email, PASSWORD)
                assert issued.status_code == 200
                token = issued.json()["access_token"]
                header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
                assert header["alg"] == algorithm
                assert (await _me(http, token)).status_code == 200
                me = (await _me(http, token)).json()
                # HS256 signed with the public key, which an attacker knows: must be refused.
                confused = forge(claims_for(controller.id, gen=_generation(token)), public.read_bytes())
                assert (await _me(http, confused)).status_code == 401
                # And the HS256 service secret means nothing to an RS256 service.
                assert (await _me(http, forge(claims_for(controller.id, gen=_generation(token)),
                                              TEST_SECRET.encode()))).status_code == 401
                assert me["id"] == controller.id
        finally:
            await rs_app.state.db.engine.dispose()


def _generation(token: str) -> int:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["gen"]

"""Health probes and settings that refuse unsafe production configuration."""

from __future__ import annotations

import stat

import httpx
import pytest

from app.core.config import ConfigError, Settings
from app.main import create_app


class TestHealth:
    async def test_healthz(self, client):
        r = await client.get("/healthz")
        assert r.status_code == 200
        assert r.json()["status"] == "ok"

    async def test_readyz_when_migrated(self, client):
        r = await client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["revision"]

    @pytest.mark.parametrize("kind", ["unmigrated", "unreachable"])
    async def test_readyz_is_503_otherwise(self, tmp_path, kind):
        url = (f"sqlite:///{tmp_path / 'empty.db'}" if kind == "unmigrated"
               else "postgresql://nobody@127.0.0.1:1/none")
        app = create_app(Settings(database_url=url, jwt_secret="s" * 48))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            r = await http.get("/readyz")
        await app.state.db.engine.dispose()
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"


class TestSettings:
    @pytest.mark.parametrize(("secret", "message"), [
        (None, "required"),
        ("changeme", "placeholder"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "placeholder"),
        ("short-but-random-7Fq", "at least"),
    ])
    def test_production_refuses_unsafe_secrets(self, secret, message):
        with pytest.raises(ConfigError, match=message):
            Settings(env="production", database_url="postgresql://db/x", jwt_secret=secret)

    def test_production_refuses_the_sqlite_default(self):
        with pytest.raises(ConfigError, match="DATABASE_URL"):
            Settings(env="production", jwt_secret="Zq8" * 20)

    def test_production_accepts_a_real_secret(self):
        # Issue 17: production also needs an https public address and real delivery (or console on purpose).
        assert Settings(env="production", database_url="postgresql://db/x", jwt_secret="Zq8-vT1_pL" * 5,
                        erasure_keys="Er4-sX9_kQ" * 5, public_base_url="https://rekisteri.example.fi", delivery="console",
                        audit_signing_key_file="/run/secrets/audit-signing-key.pem").env == "production"

    def test_environment_variables_are_read(self, monkeypatch):
        monkeypatch.setenv("REKISTERI_ACCESS_TOKEN_TTL_SECONDS", "300")
        monkeypatch.setenv("REKISTERI_CORS_ORIGINS", '["https://app.example.com"]')
        s = Settings()
        assert s.access_token_ttl_seconds == 300
        assert s.cors_origins == ["https://app.example.com"]
        assert Settings().cors_origins == ["https://app.example.com"]
        monkeypatch.delenv("REKISTERI_CORS_ORIGINS")
        assert Settings().cors_origins == []

    def test_development_erasure_key_is_generated_once_apart_from_the_jwt_secret(self, tmp_path):
        settings = Settings(jwt_secret_file=tmp_path / "jwt", erasure_keys_file=tmp_path / "erasure")
        keys = settings.erasure_key_list()
        assert len(keys) == 1 and len(keys[0]) >= 32 and keys[0] != settings.signing_key()
        assert Settings(erasure_keys_file=tmp_path / "erasure").erasure_key_list() == keys
        assert stat.S_IMODE((tmp_path / "erasure").stat().st_mode) == 0o600

    def test_erasure_keys_are_newest_first(self):
        assert Settings(erasure_keys=" new-key , old-key ,").erasure_key_list() == ["new-key", "old-key"]

    def test_development_secret_is_generated_once_with_mode_0600(self, tmp_path):
        path = tmp_path / "jwt-secret"
        first = Settings(jwt_secret_file=path).signing_key()
        assert Settings(jwt_secret_file=path).signing_key() == first
        assert len(first) >= 32
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

"""A production configuration that refuses to be unsafe, lists every problem at once, and is documented in full."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.core.config import ConfigError, Settings
from app.main import create_app

CLI = str(Path(sys.executable).with_name("rekisteri"))
ROOT = Path(__file__).resolve().parents[2]
SAFE = {"env": "production", "database_url": "postgresql://rekisteri@db/rekisteri", "jwt_secret": "Zq8-vT1_pL" * 5,
        "erasure_keys": "Er4-sX9_kQ" * 5 + "," + "Old-8mN_qW" * 5,
        "public_base_url": "https://rekisteri.example.fi", "smtp_host": "smtp.example.fi",
        "sms_gateway_url": "https://sms.example.fi/send", "sms_gateway_token": "gw-token-Zq8vT1pL",
        "audit_signing_key_file": "/run/secrets/audit-signing-key.pem"}


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REKISTERI_")}
    return subprocess.run([CLI, *args], env={**base, **env}, cwd=cwd, capture_output=True, text=True, timeout=120)


class TestRefusals:
    def test_every_unsafe_setting_is_listed_at_once(self):
        with pytest.raises(ConfigError) as refused:
            Settings(env="production", db_echo=True, cors_origins=["*"])
        problems = refused.value.problems[1:]
        named = {re.match(r"(REKISTERI_[A-Z_]+)", line).group(1) for line in problems}
        assert named == {"REKISTERI_DATABASE_URL", "REKISTERI_JWT_SECRET", "REKISTERI_ERASURE_KEYS",
                         "REKISTERI_PUBLIC_BASE_URL",
                         "REKISTERI_SMTP_HOST", "REKISTERI_SMS_GATEWAY_URL", "REKISTERI_DB_ECHO",
                         "REKISTERI_CORS_ORIGINS", "REKISTERI_AUDIT_SIGNING_KEY_FILE"}

    def test_a_safe_production_configuration_starts(self):
        assert Settings(**SAFE).unsafe_settings() == []

    @pytest.mark.parametrize(("keys", "problem"), [
        ("short", "at least 32"), ("Er4-sX9_kQ" * 5 + ",changeme", "placeholder"),
        ("Zq8-vT1_pL" * 5, "must not be the JWT secret")])
    def test_erasure_keys_are_their_own_strong_keys(self, keys, problem):
        # GDPR Art. 17: the hashes of erased references must outlive a rotation of the token signing key.
        with pytest.raises(ConfigError, match=f"REKISTERI_ERASURE_KEYS: .*{problem}"):
            Settings(**{**SAFE, "erasure_keys": keys})

    @pytest.mark.parametrize("url", ["http://rekisteri.example.fi", "rekisteri.example.fi"])
    def test_the_public_address_must_be_https(self, url):
        with pytest.raises(ConfigError, match="REKISTERI_PUBLIC_BASE_URL must be an https"):
            Settings(**{**SAFE, "public_base_url": url})

    def test_console_delivery_only_on_purpose(self):
        with pytest.raises(ConfigError, match="REKISTERI_SMTP_HOST must be set"):
            Settings(**{**SAFE, "smtp_host": None})
        chosen = Settings(**{**SAFE, "smtp_host": None, "sms_gateway_url": None, "delivery": "console"})
        assert (chosen.email_backend_name, chosen.sms_backend_name) == ("console", "console")
        # DELIVERY=console also wins over configured backends: nothing leaves.
        assert Settings(**{**SAFE, "delivery": "console"}).email_backend_name == "console"

    def test_the_command_prints_one_line_per_problem_and_exits_non_zero(self, tmp_path):
        done = _cli("serve", env={"REKISTERI_ENV": "production", "REKISTERI_PUBLIC_BASE_URL": "http://x"}, cwd=tmp_path)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert lines[0] == "rekisteri: refusing to start in production; fix these settings:"
        assert len(lines) == 8 and all(line.startswith("  - REKISTERI_") for line in lines[1:])
        assert "Traceback" not in done.stderr
        assert not (tmp_path / ".rekisteri-jwt-secret").exists()  # refused before anything was written

    def test_a_malformed_setting_is_one_line(self, tmp_path):
        done = _cli("migrate", env={"REKISTERI_DB_POOL_SIZE": "many"}, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.startswith("rekisteri: REKISTERI_DB_POOL_SIZE:") and len(done.stderr.splitlines()) == 1


class TestDocsPage:
    @pytest.mark.parametrize(("docs", "status"), [(None, 404), ("on", 200)])
    async def test_production_hides_the_openapi_page_unless_asked(self, database_url, docs, status):
        settings = Settings(**{**SAFE, "database_url": database_url}, **({"docs": docs} if docs else {}))
        app = create_app(settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            assert (await http.get("/docs")).status_code == status
            assert (await http.get("/openapi.json")).status_code == status
            assert (await http.get("/healthz")).status_code == 200
        await app.state.db.engine.dispose()

    async def test_development_serves_it_with_the_password_flow(self, client):
        spec = (await client.get("/openapi.json")).json()
        flows = spec["components"]["securitySchemes"]["OAuth2"]["flows"]
        assert flows["password"]["tokenUrl"] == "/v1/auth/token"
        assert flows["clientCredentials"]["tokenUrl"] == "/v1/auth/token"
        assert (await client.get("/docs")).status_code == 200


class TestEverySettingDocumented:
    def test_the_operating_guide_table_names_every_setting(self):
        text = (ROOT / "docs" / "operating.md").read_text()
        rows = [line for line in text.splitlines() if line.startswith("| `REKISTERI_")]
        documented = set(re.findall(r"`(REKISTERI_[A-Z0-9_]+)`", "\n".join(rows)))
        fields = {f"REKISTERI_{name.upper()}" for name in Settings.model_fields}
        assert sorted(fields - documented) == []
        assert sorted(documented - fields) == []  # nor any that no longer exists

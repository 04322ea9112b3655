"""Settings read from REKISTERI_* environment variables."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./rekisteri.db"
MIN_SECRET_LENGTH = 32
# Values people paste from tutorials; production refuses them.
PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "dev", "development", "test", "password"}


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says why (one line per problem)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="REKISTERI_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = Field(default=40, ge=1, le=500)
    db_echo: bool = False
    # None: JSON lines in production, readable lines in development.
    log_format: Literal["json", "text"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # None: the OpenAPI page and document are served in development, 404 in production unless "on".
    docs: Literal["on", "off"] | None = None
    # Peers whose X-Forwarded-For is believed (addresses or networks, comma-separated; `*` for any).
    trusted_proxies: Annotated[list[str], NoDecode] = ["127.0.0.1"]

    jwt_secret: SecretStr | None = None
    jwt_secret_file: Path = Path(".rekisteri-jwt-secret")
    # python-jose 3.5 has no EdDSA; ES256 is the elliptic-curve choice it supports.
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "rekisteri"
    jwt_audience: str = "rekisteri-api"
    # GDPR Art. 17: the keys of the hashes an erased person's external references are kept as (a re-push is 410).
    # Comma-separated, newest first; older keys are still checked, so a rotation never un-erases anyone. Never the
    # JWT key: rotating that must not forget who was erased. Development generates one into the file below.
    erasure_keys: SecretStr | None = None
    erasure_keys_file: Path = Path(".rekisteri-erasure-keys")
    # How long one process trusts what it read about a token's account or client (revocation, role); at most 1 s.
    principal_cache_seconds: float = Field(default=1.0, ge=0, le=1)
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    password_change_token_ttl_seconds: int = Field(default=600, ge=60, le=3600)

    # Counted per account AND source address, so nobody elsewhere can lock a person out of their own machine.
    login_max_failures: int = Field(default=5, ge=1)
    # Counted per source address across all accounts (password guessing over many accounts).
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)

    # Signs Art. 19 notices to the register profile's recipients that have a callback URL.
    recipient_signing_secret: SecretStr | None = None
    # Keys the one-click opt-out links of audience rows (HMAC); keep it stable, links in sent mail must keep working.
    # Unset: derived from the JWT secret (rotating that would then break links already sent).
    optout_secret: SecretStr | None = None
    # Where clients reach the service; links in receipts and notices are built from it.
    public_base_url: str = "http://127.0.0.1:8000"
    cors_origins: list[str] = []
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    page_limit_default: int = 50
    page_limit_max: int = 500

    # Delivery (app/outbox). Backends default to "console" when nothing real is configured;
    # "console" here sends nothing at all, which production accepts only when asked for this way.
    delivery: Literal["auto", "console"] = "auto"
    worker_in_process: bool | None = None  # None: on in development, off in production
    outbox_batch_size: int = Field(default=100, ge=1, le=5000)
    outbox_concurrency: int = Field(default=8, ge=1, le=256)
    outbox_lease_seconds: int = Field(default=300, ge=5)
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    outbox_backoff_base_seconds: float = Field(default=30.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    email_backend: Literal["smtp", "console"] | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "rekisteri@localhost"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    sms_backend: Literal["http", "console"] | None = None
    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    # Waitlist limits (OWASP API4/API6), counted in the database so every worker shares them.
    waitlist_sms_per_phone_per_hour: int = Field(default=3, ge=1)
    waitlist_notifications_per_client_per_hour: int = Field(default=60, ge=1)
    waitlist_signups_per_client_per_minute: int = Field(default=30, ge=1)
    # The audit chain (app/audit/sequencer.py). "sequencer": requests write their entry unsealed and
    # `rekisteri worker` (or, in development, the app process) seals entries in commit order, in batches;
    # "inline": each writing transaction seals its own at commit (one writer at a time; SQLite's default).
    audit_sealing: Literal["inline", "sequencer"] | None = None  # None: inline on SQLite, sequencer on PostgreSQL
    audit_sequencer_in_process: bool | None = None  # None: on in development, off in production
    # Ed25519 key (PEM, PKCS#8) the sequencer signs checkpoints with; keep it outside the database and its backups.
    # Generated once in development; production needs it set.
    audit_signing_key_file: Path = Path(".rekisteri-audit-signing-key")
    audit_checkpoint_every: int = Field(default=1000, ge=1)  # entries
    audit_checkpoint_seconds: float = Field(default=10.0, gt=0)
    # "async": an audited read that changes nothing commits its audit entry without waiting for the WAL flush
    # (synchronous_commit off for that transaction): a database crash may lose the last few hundred milliseconds of
    # such entries, never a write's. "sync" waits, as every other transaction does.
    audit_read_commit: Literal["sync", "async"] = "sync"
    # Hot, simple reads (GET /v1/registrants?email=) answered before FastAPI's routing when they can be answered
    # exactly as the route would (app/core/lean.py); off: every request goes through its route.
    lean_routes: bool = True
    audit_seal_batch_size: int = Field(default=1000, ge=1, le=20000)
    audit_seal_poll_seconds: float = Field(default=0.2, gt=0, le=10)
    # Hosts that callbacks may reach over plain http or at private addresses (comma-separated).
    callback_allowlist: Annotated[list[str], NoDecode] = []

    @field_validator("callback_allowlist", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry != "*":
                ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @property
    def log_format_name(self) -> str:
        """`json` in production, `text` in development, unless set."""
        return self.log_format or ("json" if self.env == "production" else "text")

    @property
    def docs_enabled(self) -> bool:
        """Whether /docs and /openapi.json are served."""
        return self.docs == "on" if self.docs else self.env == "development"

    @property
    def runs_worker_in_process(self) -> bool:
        """Whether the app process drains the outbox itself (the embedded default)."""
        return self.env == "development" if self.worker_in_process is None else self.worker_in_process

    @property
    def audit_seals_inline(self) -> bool:
        """Whether writing transactions seal their own audit entries (no sequencer needed)."""
        if self.audit_sealing is not None:
            return self.audit_sealing == "inline"
        return self.database_url.startswith("sqlite")

    @property
    def runs_sequencer_in_process(self) -> bool:
        """Whether the app process runs the audit sequencer (sealing, checkpoints) itself: in development by default."""
        return self.env == "development" if self.audit_sequencer_in_process is None else self.audit_sequencer_in_process

    @property
    def email_backend_name(self) -> str:
        """`smtp` when a host is configured (or asked for), else `console`; always `console` with DELIVERY=console."""
        if self.delivery == "console":
            return "console"
        return self.email_backend or ("smtp" if self.smtp_host else "console")

    @property
    def sms_backend_name(self) -> str:
        """`http` when a gateway is configured (or asked for), else `console`; always `console` with DELIVERY=console."""
        if self.delivery == "console":
            return "console"
        return self.sms_backend or ("http" if self.sms_gateway_url else "console")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        problems = self.unsafe_settings()
        if problems:
            raise ConfigError("refusing to start in production; fix these settings:", *problems)
        return self

    def unsafe_settings(self) -> list[str]:
        """Every setting production refuses, one line each (empty in development)."""
        if self.env != "production":
            return []
        problems = []
        if self.database_url == DEFAULT_DATABASE_URL:
            problems.append("REKISTERI_DATABASE_URL must be set (the SQLite default is for development)")
        problems += self._unsafe_keys()
        problems += self._unsafe_erasure_keys()
        if "public_base_url" not in self.model_fields_set:
            problems.append("REKISTERI_PUBLIC_BASE_URL must be set to the https address clients reach the service at")
        elif not self.public_base_url.startswith("https://"):
            problems.append("REKISTERI_PUBLIC_BASE_URL must be an https:// URL (links in notices and receipts)")
        if self.delivery != "console":
            if self.email_backend_name == "console":
                problems.append("REKISTERI_SMTP_HOST must be set: email would only be printed, not sent "
                                "(or set REKISTERI_DELIVERY=console on purpose)")
            elif not self.smtp_host:
                problems.append("REKISTERI_EMAIL_BACKEND=smtp needs REKISTERI_SMTP_HOST")
            if self.sms_backend_name == "console":
                problems.append("REKISTERI_SMS_GATEWAY_URL and REKISTERI_SMS_GATEWAY_TOKEN must be set: SMS would only "
                                "be printed, not sent (or set REKISTERI_DELIVERY=console on purpose)")
            elif not (self.sms_gateway_url and self.sms_gateway_token):
                problems.append("REKISTERI_SMS_BACKEND=http needs REKISTERI_SMS_GATEWAY_URL and REKISTERI_SMS_GATEWAY_TOKEN")
        if "audit_signing_key_file" not in self.model_fields_set:
            problems.append("REKISTERI_AUDIT_SIGNING_KEY_FILE must name the Ed25519 key audit checkpoints are signed "
                            "with, kept outside the database (`openssl genpkey -algorithm ed25519 -out FILE`)")
        if self.db_echo:
            problems.append("REKISTERI_DB_ECHO must be off (it prints every statement)")
        if "*" in self.cors_origins:
            problems.append("REKISTERI_CORS_ORIGINS must list origins, not `*`")
        return problems

    def _unsafe_keys(self) -> list[str]:
        if self.jwt_algorithm != "HS256":
            if self.jwt_private_key_file and self.jwt_public_key_file:
                return []
            return [f"REKISTERI_JWT_ALGORITHM={self.jwt_algorithm} needs REKISTERI_JWT_PRIVATE_KEY_FILE and "
                    "REKISTERI_JWT_PUBLIC_KEY_FILE"]
        if self.jwt_secret is None:
            return ["REKISTERI_JWT_SECRET is required (or key files with REKISTERI_JWT_ALGORITHM=RS256/ES256)"]
        value = self.jwt_secret.get_secret_value()
        if _placeholder(value):
            return ["REKISTERI_JWT_SECRET is a placeholder; generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"]
        if len(value) < MIN_SECRET_LENGTH:
            return [f"REKISTERI_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters"]
        return []

    def _unsafe_erasure_keys(self) -> list[str]:
        keys = _split_keys(self.erasure_keys.get_secret_value()) if self.erasure_keys is not None else []
        if not keys:
            return ["REKISTERI_ERASURE_KEYS is required (comma-separated, newest first); generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"]
        if any(_weak(key) for key in keys):
            return [f"REKISTERI_ERASURE_KEYS: every key must be at least {MIN_SECRET_LENGTH} characters and not a "
                    "placeholder"]
        if self.jwt_secret is not None and keys[0] == self.jwt_secret.get_secret_value():
            return ["REKISTERI_ERASURE_KEYS: the newest key must not be the JWT secret (rotating that would "
                    "un-erase people)"]
        return []

    def erasure_key_list(self) -> list[str]:
        """The keys of erased references' hashes, newest first (GDPR Art. 17; older keys are still checked)."""
        if self.erasure_keys is not None:
            return _split_keys(self.erasure_keys.get_secret_value())
        return _split_keys(_dev_secret(self.erasure_keys_file.resolve()))

    def legacy_erasure_key(self) -> str:
        """The key erased references were hashed with before they had their own (the token signing key)."""
        return self.signing_key()

    def keep_erasure_key(self, key: str) -> bool:
        """Append `key` as the oldest development erasure key (the migration of 0013); False if the keys are set."""
        if self.erasure_keys is not None:
            return key in self.erasure_key_list()
        path = self.erasure_keys_file.resolve()
        keys = self.erasure_key_list()
        if key not in keys:
            path.write_text(",".join([*keys, key]) + "\n")
            _dev_secret.cache_clear()
        return True

    def signing_key(self) -> str:
        """The key tokens are signed with."""
        if self.jwt_algorithm != "HS256":
            return _read_key(self.jwt_private_key_file)
        return self._hmac_secret()

    def verification_key(self) -> str:
        """The key token signatures are checked with."""
        if self.jwt_algorithm != "HS256":
            return _read_key(self.jwt_public_key_file)
        return self._hmac_secret()

    def optout_key(self) -> bytes:
        """The HMAC key of one-click opt-out tokens."""
        if self.optout_secret is not None:
            return self.optout_secret.get_secret_value().encode()
        return hmac.new(self._hmac_secret().encode(), b"rekisteri optout v1", hashlib.sha256).digest()

    def _hmac_secret(self) -> str:
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return _dev_secret(self.jwt_secret_file.resolve())


def _placeholder(value: str) -> bool:
    return value.strip().lower() in PLACEHOLDER_SECRETS or len(set(value)) < 8


def _weak(value: str) -> bool:
    return _placeholder(value) or len(value) < MIN_SECRET_LENGTH


def _split_keys(value: str) -> list[str]:
    return [key.strip() for key in value.split(",") if key.strip()]


def _read_key(path: Path | None) -> str:
    if path is None:
        raise ConfigError("key file not configured")
    return path.read_text()


@lru_cache
def _dev_secret(path: Path) -> str:
    """Generate the development signing secret once and keep it, readable only by its owner."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()

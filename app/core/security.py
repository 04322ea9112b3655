"""Password hashing and tokens: the only module that imports passlib and python-jose."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jose import JWTError, jwt
from passlib.context import CryptContext

from app.core import clock
from app.core.config import Settings

# argon2id with the OWASP minimum (m=19 MiB, t=2, p=1): sound, and ~10x cheaper than passlib's default.
_passwords = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)
# Verified against when an account does not exist, so both answers take as long.
_DUMMY_HASH = _passwords.hash(secrets.token_urlsafe(16))

REQUIRED_CLAIMS = ("sub", "role", "scope", "iss", "aud", "iat", "nbf", "exp", "jti")
_OTP_ALPHABET = string.ascii_letters + string.digits


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _passwords.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether the password matches; constant work whether or not there is a hash."""
    if password_hash is None:
        _passwords.verify(password, _DUMMY_HASH)
        return False
    try:
        return _passwords.verify(password, password_hash)
    except ValueError:
        return False


def new_one_time_password() -> str:
    """A random 20-character password to hand over once."""
    return "".join(secrets.choice(_OTP_ALPHABET) for _ in range(20))


def new_client_secret() -> str:
    """A random client secret (256 bits)."""
    return secrets.token_urlsafe(32)


def sign_body(secret: str, body: bytes) -> str:
    """The `X-Rekisteri-Signature` value of a request body: `sha256=<hex HMAC-SHA256 under the secret>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_body_signature(secret: str, body: bytes, signature: str | None) -> bool:
    """Constant-time check of a `sha256=<hex>` signature (what receivers of our requests do)."""
    return hmac.compare_digest(sign_body(secret, body), signature or "")


def hash_secret(secret: str) -> str:
    """A digest of a high-entropy machine secret (a slow hash adds nothing at 256 bits)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, secret_hash: str | None) -> bool:
    """Constant-time check of a machine secret against its digest."""
    return hmac.compare_digest(hash_secret(secret), secret_hash or "")


class TokenError(Exception):
    """The token cannot be trusted; the message says why (never shown in detail to callers)."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified claims of an access token."""

    sub: str
    role: str
    scopes: frozenset[str]
    jti: str
    issued_at: datetime
    expires_at: datetime
    generation: int
    password_change_only: bool


def issue_token(
    settings: Settings,
    *,
    sub: str,
    role: str,
    scopes: list[str],
    generation: int,
    ttl_seconds: int,
    password_change_only: bool = False,
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    now = clock.utcnow()
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "sub": sub,
        "role": role,
        "scope": " ".join(scopes),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": str(uuid.uuid4()),
        "gen": generation,
    }
    if password_change_only:
        claims["pwd"] = True
    return jwt.encode(claims, settings.signing_key(), algorithm=settings.jwt_algorithm), ttl_seconds


def verify_token(settings: Settings, token: str) -> TokenClaims:
    """Verify signature (pinned algorithm), issuer, audience and times against our clock."""
    claims, times = _verified(settings, token)
    _check_times(*times)
    return claims


def verify_token_cached(settings: Settings, token: str) -> TokenClaims:
    """`verify_token`, checking a token's signature, issuer, audience and claims once per process (they never change
    for the same text under the same key) and its times at every use, against our clock."""
    key = (token, settings.jwt_algorithm, settings.jwt_issuer, settings.jwt_audience, settings.verification_key())
    known = _VERIFIED.get(key)
    if known is None:
        known = _verified(settings, token)
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[key] = known
    _check_times(*known[1])
    return known[0]


# Tokens verified in this process: by their text and everything they were checked against (a new key or audience
# misses); only what verified is kept, with its times (iat, nbf, exp). Bounded, emptied when full.
_VERIFIED: dict[tuple[Any, ...], tuple[TokenClaims, tuple[int, int, int]]] = {}
_VERIFIED_MAX = 10_000


def _verified(settings: Settings, token: str) -> tuple[TokenClaims, tuple[int, int, int]]:
    """The claims of a token whose signature, algorithm, issuer, audience and claims verify, and its times."""
    try:
        header = jwt.get_unverified_header(token)
    except JWTError as exc:
        raise TokenError("malformed token") from exc
    if header.get("alg") != settings.jwt_algorithm:
        raise TokenError("unexpected algorithm")
    try:
        claims = jwt.decode(
            token,
            settings.verification_key(),
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            # Times are checked in `_check_times` against the service clock, which tests can move.
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "leeway": 0},
        )
    except JWTError as exc:
        raise TokenError(str(exc)) from exc
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise TokenError(f"missing claims: {', '.join(missing)}")
    try:
        iat, nbf, exp = int(claims["iat"]), int(claims["nbf"]), int(claims["exp"])
        generation = int(claims.get("gen", -1))
    except (TypeError, ValueError) as exc:
        raise TokenError("malformed time claims") from exc
    zone = clock.utcnow().tzinfo
    return TokenClaims(
        sub=str(claims["sub"]),
        role=str(claims["role"]),
        scopes=frozenset(str(claims["scope"]).split()),
        jti=str(claims["jti"]),
        issued_at=datetime.fromtimestamp(iat, zone),
        expires_at=datetime.fromtimestamp(exp, zone),
        generation=generation,
        password_change_only=bool(claims.get("pwd", False)),
    ), (iat, nbf, exp)


def _check_times(iat: int, nbf: int, exp: int) -> None:
    now = clock.utcnow().timestamp()
    if now >= exp:
        raise TokenError("expired")
    if now < nbf or now < iat - 5:
        raise TokenError("not yet valid")


def keyed_hash(key: str, value: str) -> str:
    """HMAC-SHA256 of a value under a service key: for values kept only as hashes (erased references)."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()

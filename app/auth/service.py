"""Rules of named-person access: logins and lockout, one-time passwords, accounts, clients, tokens."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from anyio import to_thread
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth import passwords
from app.auth import repository as repo
from app.auth.models import ApiClient, UserAccount
from app.auth.principal import SYSTEM, Principal, PrincipalKind
from app.auth.roles import CLIENT_ROLES, ROLE_SCOPES, Role
from app.auth.schemas import (
    ClientCreate,
    ClientRead,
    ClientWithSecret,
    Me,
    TokenResponse,
    UserCreate,
    UserRead,
    UserUpdate,
    UserWithPassword,
)
from app.core import clock, security
from app.core.config import Settings
from app.core.context import current_client_addr
from app.core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, TooManyRequests, Unauthorized
from app.db.pagination import Page, PageParams, make_page
from app.outbox.urls import validate_callback_url

PASSWORD_CHANGE_SCOPE = "password:change"


class InvalidGrant(DomainError):
    """OAuth2 `invalid_grant`/`invalid_client`: wrong credentials; the same answer for unknown accounts."""

    status, slug, title = 401, "invalid-credentials", "Invalid credentials"


def _oauth_error(code: str) -> dict[str, str]:
    return {"error": code}


def _user_principal(user: UserAccount) -> Principal:
    role = Role(user.role)
    return Principal(kind=PrincipalKind.user, id=user.id, name=user.full_name, role=role, scopes=ROLE_SCOPES[role])


def _client_principal(client: ApiClient) -> Principal:
    role = Role(client.role)
    return Principal(kind=PrincipalKind.client, id=client.id, name=client.name, role=role, scopes=ROLE_SCOPES[role],
                     system=client.system)


def _granted_scopes(role: Role, requested: str | None) -> list[str]:
    allowed = {s.value for s in ROLE_SCOPES[role]}
    if not requested:
        return sorted(allowed)
    wanted = set(requested.split())
    if not wanted <= allowed:
        raise Invalid("requested scope exceeds the role's scopes", loc=["body", "scope"], extra=_oauth_error("invalid_scope"))
    return sorted(wanted)


def _mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


# --- logins -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Limit:
    """One throttle a login attempt counts against: its key and how many failures lock it."""

    key: str
    max_failures: int


def _limits(settings: Settings, account: str) -> list[_Limit]:
    """The account at this source address, and the source address across all accounts.

    Counting the account per address means a stranger's guesses elsewhere cannot lock a person out of
    their own machine; the address limit stops one source from guessing over many accounts.
    """
    address = current_client_addr() or "unknown"
    return [_Limit(f"{account_key(account)}|{address}", settings.login_max_failures),
            _Limit(f"addr:{address}", settings.login_max_failures_per_address)]


def account_key(account: str) -> str:
    """The throttle-key prefix of an account (`user:<email>` or `client:<id>`), hashed: no emails in the table."""
    return "acct:" + hashlib.sha256(account.strip().lower().encode()).hexdigest()[:40]


async def _check_lock(session: AsyncSession, *, limits: list[_Limit], actor: Principal) -> None:
    now = clock.utcnow()
    for limit in limits:
        throttle = await repo.lock_throttle(session, key=limit.key, now=now)
        if throttle.locked_until and throttle.locked_until > now:
            audit.record(session, actor=actor, action="auth.login", outcome="locked")
            await session.commit()
            raise TooManyRequests("too many failed logins; try again later",
                                  retry_after=int((throttle.locked_until - now).total_seconds()) + 1,
                                  extra=_oauth_error("invalid_grant"))


async def _fail(session: AsyncSession, settings: Settings, *, limits: list[_Limit], actor: Principal,
                code: str) -> InvalidGrant:
    now = clock.utcnow()
    for limit in limits:
        throttle = await repo.lock_throttle(session, key=limit.key, now=now)
        if now - throttle.window_started_at > timedelta(seconds=settings.login_window_seconds):
            throttle.failures, throttle.window_started_at = 0, now
        throttle.failures += 1
        if throttle.failures >= limit.max_failures:
            throttle.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
    audit.record(session, actor=actor, action="auth.login", outcome="failure")
    # The failure must survive the error response: commit before raising.
    await session.commit()
    return InvalidGrant("the credentials are not valid", extra=_oauth_error(code))


async def login_with_password(
    session: AsyncSession, settings: Settings, *, email: str, password: str, scope: str | None
) -> TokenResponse:
    """The password grant: a token for a named person, throttled per account and source address."""
    limits = _limits(settings, "user:" + email)
    unknown = Principal(kind=PrincipalKind.anonymous, id=None, name=_mask(email.strip().lower()), role=None)
    await _check_lock(session, limits=limits, actor=unknown)
    user = await repo.user_by_email(session, email=email.strip())
    usable = user is not None and user.active
    ok = await to_thread.run_sync(security.verify_password, password, user.password_hash if usable else None)
    if not ok or user is None:
        raise await _fail(session, settings, limits=limits, actor=_user_principal(user) if user else unknown,
                          code="invalid_grant")
    await repo.clear_throttle(session, key=limits[0].key)
    principal = _user_principal(user)
    audit.record(session, actor=principal, action="auth.login", resource_type="user", resource_id=user.id,
                 details={"grant": "password", "one_time_password": user.must_change_password})
    if user.must_change_password:
        token, ttl = security.issue_token(settings, sub=principal.subject, role=user.role, scopes=[PASSWORD_CHANGE_SCOPE],
                                          generation=user.token_generation,
                                          ttl_seconds=settings.password_change_token_ttl_seconds,
                                          password_change_only=True)
        return TokenResponse(access_token=token, expires_in=ttl, scope=PASSWORD_CHANGE_SCOPE)
    return _token_for(settings, principal, generation=user.token_generation, scope=scope)


async def login_with_client(
    session: AsyncSession, settings: Settings, *, client_id: str, secret: str, scope: str | None
) -> TokenResponse:
    """The client-credentials grant: a token for a machine client, throttled per client id and source address."""
    limits = _limits(settings, "client:" + client_id)
    unknown = Principal(kind=PrincipalKind.anonymous, id=None, name=f"client {client_id[:40]}", role=None)
    await _check_lock(session, limits=limits, actor=unknown)
    try:
        client = await repo.client_by_id(session, client_id=uuid.UUID(client_id))
    except ValueError:
        client = None
    usable = client is not None and client.revoked_at is None
    if not security.verify_secret(secret, client.secret_hash if usable else None) or client is None:
        raise await _fail(session, settings, limits=limits, actor=_client_principal(client) if client else unknown,
                          code="invalid_client")
    await repo.clear_throttle(session, key=limits[0].key)
    principal = _client_principal(client)
    audit.record(session, actor=principal, action="auth.login", resource_type="client", resource_id=client.id,
                 details={"grant": "client_credentials"})
    return _token_for(settings, principal, generation=client.token_generation, scope=scope)


def _token_for(settings: Settings, principal: Principal, *, generation: int, scope: str | None) -> TokenResponse:
    assert principal.role is not None
    scopes = _granted_scopes(principal.role, scope)
    token, ttl = security.issue_token(settings, sub=principal.subject, role=principal.role.value, scopes=scopes,
                                      generation=generation, ttl_seconds=settings.access_token_ttl_seconds)
    return TokenResponse(access_token=token, expires_in=ttl, scope=" ".join(scopes))


# --- tokens -> principals -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Known:
    """What a token is checked against: the account or client as last read, and until when that read is trusted."""

    principal: Principal
    generation: int
    usable: bool  # an active account, an unrevoked client
    expires: float


# Per process, for at most REKISTERI_PRINCIPAL_CACHE_SECONDS (≤ 1 s): a revocation acts within that in every process,
# at once in the one that made it (the token_generation listeners below forget the subject when it changes).
_known: dict[uuid.UUID, _Known] = {}
_KNOWN_MAX = 10_000


@event.listens_for(UserAccount.token_generation, "set")
@event.listens_for(ApiClient.token_generation, "set")
@event.listens_for(UserAccount.active, "set")
@event.listens_for(ApiClient.revoked_at, "set")
def _forget(target: UserAccount | ApiClient, *_: object) -> None:
    _known.pop(target.id, None)


async def _subject(session: AsyncSession, settings: Settings, kind: str, subject_id: uuid.UUID) -> _Known | None:
    """The token's subject as the database has it (or had it less than the cache time ago)."""
    ttl, now = settings.principal_cache_seconds, time.monotonic()
    hit = _known.get(subject_id) if ttl else None
    if hit is not None and hit.expires > now:
        return hit
    reading = asyncio.get_running_loop().create_future() if ttl and subject_id not in _reading else None
    if reading is not None:
        _reading[subject_id] = reading
    try:
        known = None
        if kind == PrincipalKind.user:
            user = await repo.user_by_id(session, user_id=subject_id)
            if user is not None:
                known = _Known(_user_principal(user), user.token_generation, user.active, now + ttl)
        elif kind == PrincipalKind.client:
            client = await repo.client_by_id(session, client_id=subject_id)
            if client is not None:
                known = _Known(_client_principal(client), client.token_generation, client.revoked_at is None,
                               now + ttl)
        if ttl and known is not None:
            if len(_known) >= _KNOWN_MAX:
                _known.clear()
            _known[subject_id] = known
    finally:
        if reading is not None:
            del _reading[subject_id]
            reading.set_result(None)
    return known


# Subjects being read into the cache right now: when a subject's cached read expires, the requests that miss it at
# the same moment wait for that one read (`principal_after_read`) instead of each going through its full route.
_reading: dict[uuid.UUID, asyncio.Future[None]] = {}


async def principal_after_read(settings: Settings, *, token: str) -> tuple[Principal, bool] | None:
    """`cached_principal` once the read of the token's subject another request is making has finished (a read made
    now, as fresh as this request's own would be); None when no such read is under way."""
    try:
        _, _, subject_id = _claims(settings, token)
    except Unauthorized:
        return None
    reading = _reading.get(subject_id)
    if reading is None:
        return None
    await asyncio.shield(reading)
    return cached_principal(settings, token=token)


async def principal_for_token(session: AsyncSession, settings: Settings, *, token: str) -> tuple[Principal, bool]:
    """The caller a token speaks for, checked against the database (through a per-process cache of at most 1 s, see
    `_known`) so that revocations act at once in this process and within a second in every other.

    Returns the principal and whether the token may only change the password.
    """
    claims, kind, subject_id = _claims(settings, token)
    return _admitted(claims, kind, await _subject(session, settings, kind, subject_id))


def cached_principal(settings: Settings, *, token: str) -> tuple[Principal, bool] | None:
    """What `principal_for_token` answers, from the per-process cache alone: None when the token is not valid, its
    subject is not cached (or no longer fresh), or it was revoked; the caller then asks `principal_for_token`."""
    try:
        claims, kind, subject_id = _claims(settings, token)
        hit = _known.get(subject_id) if settings.principal_cache_seconds else None
        if hit is None or hit.expires <= time.monotonic():
            return None
        return _admitted(claims, kind, hit)
    except Unauthorized:
        return None


def _claims(settings: Settings, token: str) -> tuple[security.TokenClaims, str, uuid.UUID]:
    """The token's verified claims, its subject's kind and id; 401 if any is not valid."""
    try:
        claims = security.verify_token_cached(settings, token)
    except security.TokenError as exc:
        raise Unauthorized("the token is not valid") from exc
    kind, _, raw_id = claims.sub.partition(":")
    try:
        subject_id = uuid.UUID(raw_id)
    except ValueError as exc:
        raise Unauthorized("the token is not valid") from exc
    if kind not in (PrincipalKind.user, PrincipalKind.client):
        raise Unauthorized("the token is not valid")
    return claims, kind, subject_id


def _admitted(claims: security.TokenClaims, kind: str, known: _Known | None) -> tuple[Principal, bool]:
    """The principal the claims grant against the subject as known; 401 if revoked."""
    if (known is None or not known.usable or known.generation != claims.generation
            or (kind == PrincipalKind.user and known.principal.role != claims.role)):
        raise Unauthorized("the token has been revoked")
    principal = known.principal
    if claims.password_change_only:
        return Principal(kind=principal.kind, id=principal.id, name=principal.name, role=principal.role), True
    scopes = frozenset(s for s in principal.scopes if s.value in claims.scopes)
    return Principal(kind=principal.kind, id=principal.id, name=principal.name, role=principal.role,
                     scopes=scopes, system=principal.system), False


async def change_password(
    session: AsyncSession, settings: Settings, *, principal: Principal, current: str, new: str
) -> TokenResponse:
    """Set a new password; every token issued before stops working, a fresh one is returned."""
    if principal.kind != PrincipalKind.user or principal.id is None:
        raise Forbidden("only named persons have passwords")
    user = await repo.user_by_id(session, user_id=principal.id)
    if user is None:
        raise Unauthorized("the token has been revoked")
    if not await to_thread.run_sync(security.verify_password, current, user.password_hash):
        raise Invalid("the current password is wrong", loc=["body", "current_password"])
    if new == current:
        raise Invalid("the new password must differ from the current one", loc=["body", "new_password"])
    known = [user.email, *user.full_name.split(), "rekisteri"]
    reason = await to_thread.run_sync(lambda: passwords.weakness(new, user_inputs=known))
    if reason:
        raise Invalid(reason, loc=["body", "new_password"])
    user.password_hash = await to_thread.run_sync(security.hash_password, new)
    user.must_change_password = False
    user.token_generation += 1
    user.password_changed_at = clock.utcnow()
    await session.flush()
    fresh = _user_principal(user)
    audit.record(session, actor=fresh, action="auth.password_change", resource_type="user", resource_id=user.id)
    return _token_for(settings, fresh, generation=user.token_generation, scope=None)


# --- accounts -------------------------------------------------------------------------------

async def _new_password_hash() -> tuple[str, str]:
    password = security.new_one_time_password()
    return password, await to_thread.run_sync(security.hash_password, password)


async def create_user(session: AsyncSession, *, actor: Principal, data: UserCreate) -> UserWithPassword:
    """A new named person with a one-time password, shown once."""
    if await repo.user_by_email(session, email=str(data.email)) is not None:
        raise Conflict("an account with this email already exists", errors=[{"loc": ["body", "email"], "msg": "taken"}])
    password, password_hash = await _new_password_hash()
    user = UserAccount(email=str(data.email).lower(), full_name=data.full_name, role=data.role,
                       password_hash=password_hash, must_change_password=True)
    await repo.add(session, user)
    audit.record(session, actor=actor, action="user.create", resource_type="user", resource_id=user.id,
                 details={"role": data.role})
    return UserWithPassword(**UserRead.model_validate(user).model_dump(), one_time_password=password)


async def bootstrap_controller(session: AsyncSession, *, email: str, full_name: str) -> UserWithPassword:
    """The first controller account; refused once any controller exists."""
    if await repo.count_active_controllers(session) > 0:
        raise Conflict("a controller account already exists")
    return await create_user(session, actor=SYSTEM, data=UserCreate(email=email, full_name=full_name, role="controller"))


async def reset_password_by_email(session: AsyncSession, *, email: str) -> UserWithPassword:
    """Break-glass on the server (`rekisteri reset-password`): a fresh one-time password, audited as the system."""
    user = await repo.user_by_email(session, email=email.strip())
    if user is None:
        raise NotFound("no account with this email")
    return await reset_password(session, actor=SYSTEM, user_id=user.id, via="cli")


async def _user(session: AsyncSession, user_id: uuid.UUID) -> UserAccount:
    user = await repo.user_by_id(session, user_id=user_id)
    if user is None:
        raise NotFound("no such account")
    return user


async def get_user(session: AsyncSession, *, actor: Principal, user_id: uuid.UUID) -> UserRead:
    """One account."""
    user = await _user(session, user_id)
    audit.record(session, actor=actor, action="user.read", resource_type="user", resource_id=user.id)
    return UserRead.model_validate(user)


async def list_users(session: AsyncSession, *, actor: Principal, params: PageParams) -> Page[UserRead]:
    """A page of accounts."""
    rows = await repo.list_users(session, params=params)
    page = make_page(rows, params, keyset=repo.USERS_KEYSET, convert=UserRead.model_validate)
    audit.record(session, actor=actor, action="user.list", resource_type="user", details={"count": len(page.items)})
    return page


async def update_user(session: AsyncSession, *, actor: Principal, user_id: uuid.UUID, data: UserUpdate) -> UserRead:
    """Rename, change role, (de)activate; role changes and deactivation revoke the account's tokens."""
    user = await _user(session, user_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    demotes = changes.get("role", user.role) != "controller" or changes.get("active", user.active) is False
    if user.role == "controller" and user.active and demotes and await repo.count_active_controllers(session) <= 1:
        raise Conflict("the last active controller cannot be demoted or deactivated")
    if changes.get("role", user.role) != user.role or changes.get("active", user.active) != user.active:
        user.token_generation += 1
    if changes.get("active", user.active) != user.active:
        user.deactivated_at = None if changes["active"] else clock.utcnow()
    for name, value in changes.items():
        setattr(user, name, value)
    await session.flush()
    audit.record(session, actor=actor, action="user.update", resource_type="user", resource_id=user.id,
                 details={"fields": sorted(changes)})
    return UserRead.model_validate(user)


async def reset_password(session: AsyncSession, *, actor: Principal, user_id: uuid.UUID,
                         via: str | None = None) -> UserWithPassword:
    """A new one-time password for an account; its tokens stop working and its login lockouts are lifted."""
    user = await _user(session, user_id)
    password, user.password_hash = await _new_password_hash()
    user.must_change_password = True
    user.token_generation += 1
    # The person is let back in from everywhere their own failures had locked them out of.
    await repo.clear_throttles(session, prefix=account_key("user:" + user.email) + "|")
    await session.flush()
    audit.record(session, actor=actor, action="user.password_reset", resource_type="user", resource_id=user.id,
                 details={"via": via} if via else None)
    return UserWithPassword(**UserRead.model_validate(user).model_dump(), one_time_password=password)


# --- machine clients ------------------------------------------------------------------------

async def _client(session: AsyncSession, client_id: uuid.UUID) -> ApiClient:
    client = await repo.client_by_id(session, client_id=client_id)
    if client is None:
        raise NotFound("no such client")
    return client


def _with_secret(client: ApiClient, secret: str) -> ClientWithSecret:
    return ClientWithSecret(**ClientRead.model_validate(client).model_dump(), client_id=client.id, client_secret=secret,
                            callback_secret=client.callback_secret)


async def create_client(session: AsyncSession, *, actor: Principal, data: ClientCreate,
                        callback_allowlist: list[str]) -> ClientWithSecret:
    """A new machine client; its secret (and callback signing secret) is shown once."""
    assert Role(data.role) in CLIENT_ROLES
    callback = None
    if data.callback_url:
        callback = await validate_callback_url(data.callback_url, allowlist=callback_allowlist,
                                               loc=["body", "callback_url"])
    secret = security.new_client_secret()
    client = ApiClient(name=data.name, role=data.role, system=data.system, secret_hash=security.hash_secret(secret),
                       created_by=str(actor.id) if actor.id else None, callback_url=callback,
                       callback_secret=security.new_client_secret() if callback else None)
    await repo.add(session, client)
    audit.record(session, actor=actor, action="client.create", resource_type="client", resource_id=client.id,
                 details={"role": data.role, "system": data.system})
    return _with_secret(client, secret)


async def get_client(session: AsyncSession, *, actor: Principal, client_id: uuid.UUID) -> ClientRead:
    """One client."""
    client = await _client(session, client_id)
    audit.record(session, actor=actor, action="client.read", resource_type="client", resource_id=client.id)
    return ClientRead.model_validate(client)


async def list_clients(session: AsyncSession, *, actor: Principal, params: PageParams) -> Page[ClientRead]:
    """A page of clients."""
    rows = await repo.list_clients(session, params=params)
    page = make_page(rows, params, keyset=repo.CLIENTS_KEYSET, convert=ClientRead.model_validate)
    audit.record(session, actor=actor, action="client.list", resource_type="client", details={"count": len(page.items)})
    return page


async def rotate_client(session: AsyncSession, *, actor: Principal, client_id: uuid.UUID) -> ClientWithSecret:
    """A new secret; the old secret and every token issued with it stop working."""
    client = await _client(session, client_id)
    if client.revoked_at is not None:
        raise Conflict("the client is revoked")
    secret = security.new_client_secret()
    client.secret_hash = security.hash_secret(secret)
    if client.callback_url:
        client.callback_secret = security.new_client_secret()
    client.token_generation += 1
    await session.flush()
    audit.record(session, actor=actor, action="client.rotate", resource_type="client", resource_id=client.id)
    return _with_secret(client, secret)


async def revoke_client(session: AsyncSession, *, actor: Principal, client_id: uuid.UUID) -> ClientRead:
    """Revoke a client for good; its tokens stop working at once."""
    client = await _client(session, client_id)
    if client.revoked_at is None:
        client.revoked_at = clock.utcnow()
        client.token_generation += 1
        await session.flush()
    audit.record(session, actor=actor, action="client.revoke", resource_type="client", resource_id=client.id)
    return ClientRead.model_validate(client)


async def callback_secret(session: AsyncSession, client_id: str) -> str | None:
    """The key a client's event notices are signed with (None when revoked or unknown)."""
    try:
        client = await repo.client_by_id(session, client_id=uuid.UUID(client_id))
    except ValueError:
        return None
    return client.callback_secret if client is not None and client.revoked_at is None else None


async def describe(session: AsyncSession, *, principal: Principal) -> Me:
    """The caller as `GET /v1/auth/me` shows it (the account was loaded when the token was checked)."""
    email = None
    if principal.kind == PrincipalKind.user and principal.id is not None:
        user = await repo.user_by_id(session, user_id=principal.id)
        email = user.email if user else None
    return Me(kind=principal.kind, id=principal.id, name=principal.name, email=email, role=principal.role,
              scopes=scope_names(principal), system=principal.system)


def scope_names(principal: Principal) -> list[str]:
    """The scopes of a principal, sorted, as strings."""
    return sorted(s.value for s in principal.scopes)



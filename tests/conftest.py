"""Shared fixtures: real databases (SQLite, or PostgreSQL when REKISTERI_TEST_DATABASE_URL is set), the app
over real ASGI HTTP, and account helpers.

Isolation — each test is rolled back. A test that uses the app runs inside one database transaction that
is rolled back at its end: the app's sessions join it through SAVEPOINTs (their commits release a
savepoint), and `app.state.db.engine.begin()/connect()` hand out the same connection inside a savepoint.
Nothing a test writes is seen by another test, on SQLite and PostgreSQL alike. The first controller, one
account per role (`accounts`) and the combined register profile are made once per database and committed
before any test transaction begins.

The marker `@pytest.mark.commits` is for the few tests that need real commits: several connections or
processes at once (outbox workers, concurrent requests, the live `rekisteri serve`, the CLI writing to the
test database). They run on a database of their own, where nothing is rolled back, and keep apart by
unique data. A test that uses `live_server` is marked so automatically.

The rules: no test leaves global state changed — each test gets its own copy of `app.state.wiring`, and
`app.state.settings` is restored after it; use `monkeypatch` for anything else. No test depends on another
having run before it (there is no ordering hook).

Parallel: `pytest -n auto` (pytest-xdist) gives each worker its own databases: SQLite files under the
worker's temporary directory; on PostgreSQL `<db>_<worker>` and `<db>_<worker>_commits` beside the database
of REKISTERI_TEST_DATABASE_URL, created through the `postgres` maintenance database (without xdist: `<db>`
and `<db>_commits`). Every run drops and re-creates their `public` schema.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from app.auth import service as auth_service
from app.core import clock as service_clock
from app.core.config import Settings
from app.db import migrations
from app.db.session import Database
from app.main import create_app

TEST_SECRET = "test-secret-" + "k" * 40
TEST_ERASURE_KEYS = "test-erasure-" + "e" * 40
PASSWORD = "correct horse battery staple"
PROFILES = Path(__file__).resolve().parents[1] / "profiles"
STAFF_ROLE_NAMES = ("controller", "staff", "auditor", "viewer")
CLIENT_ROLE_NAMES = ("integration", "automation")
ALL_ROLES = STAFF_ROLE_NAMES + CLIENT_ROLE_NAMES
COMMITS = "commits"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker of tests that need real commits."""
    config.addinivalue_line("markers", f"{COMMITS}: the test needs real commits; it runs on a database of its own, "
                                       "not inside a rolled-back transaction")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the live server needs real commits, whether or not it says so."""
    for item in items:
        if "live_server" in getattr(item, "fixturenames", ()):
            item.add_marker(COMMITS)


# --- databases, one pair per xdist worker -----------------------------------------------------------------

def _worker() -> str:
    """The xdist worker id (`gw0`...), or empty when the run is not distributed."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def _postgres_database(base: str, suffix: str) -> str:
    """The URL of this worker's database beside the configured one (`<db>[_<worker>][_<suffix>]`)."""
    url = make_url(base)
    name = "_".join(part for part in (url.database, _worker(), suffix) if part)
    return url.set(database=name).render_as_string(hide_password=False)


def _fresh_postgres(url: str) -> None:
    """Create the database if it is missing (through `postgres`), then drop and re-create its public schema."""
    target = make_url(url)
    maintenance = create_engine(target.set(drivername="postgresql+psycopg", database="postgres"),
                                isolation_level="AUTOCOMMIT")
    with maintenance.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    maintenance.dispose()
    engine = create_engine(target.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@dataclass
class Environment:
    """One migrated database with its app and the accounts and profile made once, committed."""

    database_url: str
    settings: Settings
    app: FastAPI | None = None
    controller: Account | None = None
    accounts: dict[str, Account] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)


class Environments:
    """The rolled-back database and the committing one, each made when a test first needs it."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._made: dict[bool, Environment] = {}

    def database(self, *, commits: bool) -> Environment:
        """The migrated database (sync: alembic runs its own event loop)."""
        if commits not in self._made:
            base = os.environ.get("REKISTERI_TEST_DATABASE_URL")
            if base:
                url = _postgres_database(base, COMMITS if commits else "")
                _fresh_postgres(url)
            else:
                url = f"sqlite:///{self._tmp.mktemp(COMMITS if commits else 'db') / 'test.db'}"
            migrations.upgrade(url)
            # Rolled-back tests cannot leave sealing to a sequencer on another connection: writers seal at commit.
            # The sequencer has tests of its own (tests/audit/test_sequencer.py) and runs in `live_server`.
            keys = self._tmp.mktemp("keys")
            # No principal cache: a rolled-back test's uncommitted account changes must not outlive its transaction
            # (tests/auth/test_principal_cache.py turns it on).
            settings = Settings(database_url=url, jwt_secret=TEST_SECRET, db_pool_size=20, audit_sealing="inline",
                                principal_cache_seconds=0,
                                erasure_keys=TEST_ERASURE_KEYS, audit_signing_key_file=keys / "audit-signing-key",
                                jwt_secret_file=keys / "unused")
            self._made[commits] = Environment(url, settings)
        return self._made[commits]

    async def ready(self, *, commits: bool) -> Environment:
        """The database with its app, controller, one account per role and the combined profile."""
        env = await asyncio.to_thread(self.database, commits=commits)  # alembic runs its own loop
        if env.app is None:
            env.app = create_app(env.settings)
            transport = httpx.ASGITransport(app=env.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test") as http:
                env.controller = await _bootstrap_controller(env.app, http)
                env.accounts = {"controller": env.controller}
                for role in STAFF_ROLE_NAMES[1:]:
                    env.accounts[role] = await create_user(http, env.controller, role)
                for role in CLIENT_ROLE_NAMES:
                    env.accounts[role] = await create_client(http, env.controller, role)
                env.profile = combined_profile()
                r = await http.put("/v1/register", headers=env.controller.headers, json=env.profile)
                assert r.status_code == 200, r.text
        return env

    async def close(self) -> None:
        """Dispose of every app's engine."""
        for env in self._made.values():
            if env.app is not None:
                await env.app.state.db.engine.dispose()


def _commits(request: pytest.FixtureRequest) -> bool:
    """Whether the requesting test is marked to need real commits."""
    return request.node.get_closest_marker(COMMITS) is not None


@pytest.fixture(scope="session")
async def environments(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Environments]:
    """This worker's databases, made on first use and disposed of at the end."""
    made = Environments(tmp_path_factory)
    yield made
    await made.close()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, environments: Environments) -> str:
    """The test's migrated database: the rolled-back one, or the committing one for `commits` tests."""
    return environments.database(commits=_commits(request)).database_url


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    """Whether the run is on PostgreSQL."""
    return database_url.startswith("postgresql")


@pytest.fixture
def settings(request: pytest.FixtureRequest, environments: Environments) -> Settings:
    """Settings of the app under test."""
    return environments.database(commits=_commits(request)).settings


@pytest.fixture
async def environment(request: pytest.FixtureRequest, environments: Environments) -> Environment:
    """The test's database with its app and the accounts made once."""
    return await environments.ready(commits=_commits(request))


# --- each test in a transaction rolled back at its end --------------------------------------------------------

class _SavepointEngine:
    """Stands in for the engine during a test: `begin()`/`connect()` give the test's connection in a savepoint."""

    def __init__(self, connection: AsyncConnection, engine: AsyncEngine) -> None:
        self._connection = connection
        self.url, self.dialect, self.sync_engine = engine.url, engine.dialect, engine.sync_engine

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """The test's connection inside a savepoint, released at the end (rolled back on error)."""
        async with self._connection.begin_nested():
            yield self._connection

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """The test's connection inside a savepoint that is rolled back at the end."""
        savepoint = await self._connection.begin_nested()
        try:
            yield self._connection
        finally:
            if savepoint.is_active:
                await savepoint.rollback()

    async def dispose(self) -> None:
        """Nothing to dispose of: the real engine outlives the test."""


@asynccontextmanager
async def _rolled_back(app: FastAPI) -> AsyncIterator[None]:
    """Run the app inside one transaction that is rolled back at the end (a SAVEPOINT per session)."""
    real: Database = app.state.db
    async with real.engine.connect() as connection:
        outer = await connection.begin()
        app.state.db = Database(
            _SavepointEngine(connection, real.engine),  # type: ignore[arg-type]
            async_sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"))
        try:
            yield
        finally:
            app.state.db = real
            if outer.is_active:
                await outer.rollback()


@pytest.fixture
async def app(request: pytest.FixtureRequest, environment: Environment) -> AsyncIterator[FastAPI]:
    """The ASGI app; for unmarked tests every write is rolled back at the end; settings and wiring are restored."""
    application = environment.app
    assert application is not None
    settings_before, wiring_before = application.state.settings, application.state.wiring
    application.state.wiring = copy.deepcopy(wiring_before)  # the test may change its copy freely
    try:
        if _commits(request):
            yield application
        else:
            async with _rolled_back(application):
                yield application
    finally:
        application.state.settings, application.state.wiring = settings_before, wiring_before


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in-process."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test") as http:
        yield http


@pytest.fixture
def clock() -> Iterator:
    """The service clock, reset after the test."""
    yield service_clock
    service_clock.reset()


# --- accounts ---------------------------------------------------------------------------------------------

def unique_email(prefix: str = "user") -> str:
    """An email no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def bearer(token: str) -> dict[str, str]:
    """Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Account:
    """A test account or client with a usable token."""

    id: str
    token: str
    email: str | None = None
    password: str | None = None
    secret: str | None = None
    system: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


async def password_login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """POST /v1/auth/token with the password grant."""
    return await http.post("/v1/auth/token", data={"grant_type": "password", "username": email, "password": password})


async def _bootstrap_controller(app: FastAPI, http: httpx.AsyncClient) -> Account:
    """The first controller, bootstrapped as the CLI does, with its password changed."""
    email = unique_email("controller")
    async with app.state.db.sessionmaker() as session:
        created = await auth_service.bootstrap_controller(session, email=email, full_name="Test Controller")
        await session.commit()
    otp_token = (await password_login(http, email, created.one_time_password)).json()["access_token"]
    changed = await http.post("/v1/auth/password", headers=bearer(otp_token),
                              json={"current_password": created.one_time_password, "new_password": PASSWORD})
    assert changed.status_code == 200, changed.text
    return Account(id=str(created.id), token=changed.json()["access_token"], email=email, password=PASSWORD)


@pytest.fixture
def controller(environment: Environment) -> Account:
    """The first controller of the test's database (made once, committed)."""
    assert environment.controller is not None
    return environment.controller


@pytest.fixture
def accounts(environment: Environment) -> dict[str, Account]:
    """One ready account or client per role of the test's database (made once, committed; for auth matrices)."""
    return environment.accounts


async def create_user(http: httpx.AsyncClient, controller: Account, role: str) -> Account:
    """Create a staff account through the API and change its one-time password."""
    email = unique_email(role)
    created = await http.post("/v1/users", headers=controller.headers,
                              json={"email": email, "full_name": f"Test {role}", "role": role})
    assert created.status_code == 201, created.text
    otp = created.json()["one_time_password"]
    otp_token = (await password_login(http, email, otp)).json()["access_token"]
    changed = await http.post("/v1/auth/password", headers=bearer(otp_token),
                              json={"current_password": otp, "new_password": PASSWORD})
    assert changed.status_code == 200, changed.text
    return Account(id=created.json()["id"], token=changed.json()["access_token"], email=email, password=PASSWORD)


async def create_client(http: httpx.AsyncClient, controller: Account, role: str, system: str = "booking") -> Account:
    """Create a machine client through the API and get a token for it."""
    created = await http.post("/v1/clients", headers=controller.headers,
                              json={"name": f"{system} {role}", "role": role, "system": system})
    assert created.status_code == 201, created.text
    body = created.json()
    issued = await http.post("/v1/auth/token", data={"grant_type": "client_credentials",
                                                     "client_id": body["client_id"],
                                                     "client_secret": body["client_secret"]})
    assert issued.status_code == 200, issued.text
    return Account(id=body["id"], token=issued.json()["access_token"], secret=body["client_secret"], system=system)


@pytest.fixture
def make_user(client: httpx.AsyncClient, controller: Account):
    """Make a ready staff account with a given role."""
    return lambda role: create_user(client, controller, role)


@pytest.fixture
def make_client(client: httpx.AsyncClient, controller: Account):
    """Make a ready machine client with a given role and system."""
    return lambda role, system="booking": create_client(client, controller, role, system)


def combined_profile() -> dict:
    """The course company's profile plus the singing school's waitlist: every kind of purpose at once."""
    profile = json.loads((PROFILES / "selfluencer.json").read_text())
    school = json.loads((PROFILES / "uniikkiaani.json").read_text())
    waitlist = next(p for p in school["purposes"] if p["code"] == "waitlist")
    profile["purposes"].append(waitlist)
    known = {c["code"] for c in profile["data_categories"]}
    profile["data_categories"] += [c for c in school["data_categories"] if c["code"] not in known]
    subjects = {s["code"] for s in profile["data_subjects"]}
    profile["data_subjects"] += [s for s in school["data_subjects"] if s["code"] not in subjects]
    return profile


@pytest.fixture
def register_profile(environment: Environment) -> dict:
    """The combined test profile, the version in force in every test database (written once)."""
    return environment.profile


# --- the real service over HTTP ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def _live_server(environments: Environments) -> Iterator[str]:
    """`rekisteri serve` with two uvicorn workers on the committing database."""
    port = _free_port()
    committing = environments.database(commits=True)
    env = {**os.environ, "REKISTERI_DATABASE_URL": committing.database_url,
           "REKISTERI_JWT_SECRET": TEST_SECRET, "REKISTERI_ERASURE_KEYS": TEST_ERASURE_KEYS,
           "REKISTERI_AUDIT_SIGNING_KEY_FILE": str(committing.settings.audit_signing_key_file),
           "REKISTERI_WORKER_IN_PROCESS": "false"}  # tests drive the outbox themselves
    rekisteri = Path(sys.executable).with_name("rekisteri")
    # A session of its own, so that the whole group (supervisor and workers) can be stopped at once.
    proc = subprocess.Popen([str(rekisteri), "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    # Generous: on a loaded machine two workers take a while to import the app.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        _stop(proc)
        raise RuntimeError(proc.communicate(timeout=30)[1].decode() or "server did not start")
    yield base
    _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server and every worker it started (its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def live_server(environment: Environment, _live_server: str) -> str:
    """The real service: `rekisteri serve --workers 2` over real HTTP, on the committing database."""
    return _live_server

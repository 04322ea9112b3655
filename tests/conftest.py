"""Shared fixtures: a migrated real database (SQLite, or PostgreSQL when
REKISTERI_TEST_DATABASE_URL is set), the app over real ASGI HTTP, and account helpers.

Tests commit for real, like production does, and keep apart by making their own
accounts and data; a fresh database is made for every run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.auth import service as auth_service
from app.core import clock as service_clock
from app.core.config import Settings
from app.db import migrations
from app.main import create_app

TEST_SECRET = "test-secret-" + "k" * 40
PASSWORD = "correct horse battery staple"


def _reset_postgres(url: str) -> None:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly migrated database for this test run."""
    url = os.environ.get("REKISTERI_TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    migrations.upgrade(url)
    return url


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    """Whether the run is on PostgreSQL."""
    return database_url.startswith("postgresql")


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the app under test."""
    return Settings(database_url=database_url, jwt_secret=TEST_SECRET, db_pool_size=20,
                    jwt_secret_file=tmp_path_factory.mktemp("keys") / "unused")


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator:
    """The ASGI app, built once per run."""
    application = create_app(settings)
    yield application
    await application.state.db.engine.dispose()


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in-process."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test") as http:
        yield http


@pytest.fixture
def clock() -> Iterator:
    """The service clock, reset after the test."""
    yield service_clock
    service_clock.reset()


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


@pytest.fixture(scope="session")
async def controller(app) -> Account:
    """The first controller, bootstrapped as the CLI does, with its password changed."""
    email = unique_email("controller")
    async with app.state.db.sessionmaker() as session:
        created = await auth_service.bootstrap_controller(session, email=email, full_name="Test Controller")
        await session.commit()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test") as http:
        otp_token = (await password_login(http, email, created.one_time_password)).json()["access_token"]
        changed = await http.post("/v1/auth/password", headers=bearer(otp_token),
                                  json={"current_password": created.one_time_password, "new_password": PASSWORD})
        assert changed.status_code == 200, changed.text
        return Account(id=str(created.id), token=changed.json()["access_token"], email=email, password=PASSWORD)


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    """The real service: `rekisteri serve` with two uvicorn workers, over real HTTP."""
    port = _free_port()
    env = {**os.environ, "REKISTERI_DATABASE_URL": database_url, "REKISTERI_JWT_SECRET": TEST_SECRET,
           "REKISTERI_WORKER_IN_PROCESS": "false"}  # tests drive the outbox themselves
    rekisteri = Path(sys.executable).with_name("rekisteri")
    # Its own process group, so the uvicorn workers go with it (they would hold stderr open otherwise).
    proc = subprocess.Popen([str(rekisteri), "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded two-core machine can take a while to start two workers
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server did not start")
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


STAFF_ROLE_NAMES = ("controller", "staff", "auditor", "viewer")
CLIENT_ROLE_NAMES = ("integration", "automation")
ALL_ROLES = STAFF_ROLE_NAMES + CLIENT_ROLE_NAMES


@pytest.fixture(scope="session")
async def accounts(app, controller: Account) -> dict[str, Account]:
    """One ready account or client per role, made once per run (for auth matrices)."""
    transport = httpx.ASGITransport(app=app)
    made = {"controller": controller}
    async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test") as http:
        for role in STAFF_ROLE_NAMES[1:]:
            made[role] = await create_user(http, controller, role)
        for role in CLIENT_ROLE_NAMES:
            made[role] = await create_client(http, controller, role)
    return made


PROFILES = Path(__file__).resolve().parents[1] / "profiles"
# Register-profile tests rewrite the profile freely; modules whose data pins purposes (consents, waitlist,
# requests) run after them, all on one combined test profile.
_FIRST = ("tests/register/",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the register-profile tests first (a stable sort keeps every other order)."""
    items.sort(key=lambda item: 0 if any(part in item.nodeid for part in _FIRST) else 1)


def combined_profile() -> dict:
    """The course company's profile plus the singing school's waitlist: every kind of purpose at once."""
    import json  # noqa: PLC0415

    profile = json.loads((PROFILES / "selfluencer.json").read_text())
    school = json.loads((PROFILES / "uniikkiaani.json").read_text())
    waitlist = next(p for p in school["purposes"] if p["code"] == "waitlist")
    profile["purposes"].append(waitlist)
    known = {c["code"] for c in profile["data_categories"]}
    profile["data_categories"] += [c for c in school["data_categories"] if c["code"] not in known]
    subjects = {s["code"] for s in profile["data_subjects"]}
    profile["data_subjects"] += [s for s in school["data_subjects"] if s["code"] not in subjects]
    return profile


@pytest.fixture(scope="session")
async def register_profile(app, controller: Account) -> dict:
    """The combined test profile, written once as the version in force."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test") as http:
        r = await http.put("/v1/register", headers=controller.headers, json=combined_profile())
        assert r.status_code == 200, r.text
    return combined_profile()

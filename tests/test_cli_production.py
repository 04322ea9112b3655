"""The `rekisteri` command as an operator runs it: --version, break-glass reset, bootstrap --profile,
`requests due` for cron, one-line errors, and migrations that wait for each other."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app import __version__
from app.core import clock as service_clock
from app.db.migrations import MIGRATION_LOCK_KEY
from tests.conftest import PASSWORD, TEST_SECRET, combined_profile, password_login

CLI = str(Path(sys.executable).with_name("rekisteri"))


def run(*args: str, database_url: str | None, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REKISTERI_")}
    if database_url:
        env["REKISTERI_DATABASE_URL"] = database_url
    env["REKISTERI_JWT_SECRET"] = TEST_SECRET
    return subprocess.run([CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def _popen(*args: str, database_url: str, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REKISTERI_")}
    env.update(REKISTERI_DATABASE_URL=database_url, REKISTERI_JWT_SECRET=TEST_SECRET)
    return subprocess.Popen([CLI, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class TestVersionAndErrors:
    def test_version(self, tmp_path):
        done = run("--version", database_url=None, cwd=tmp_path)
        assert done.returncode == 0 and done.stdout.strip() == f"rekisteri {__version__}"

    # Not yet for an unopenable SQLite file: aiosqlite's thread prints its own traceback at exit (known gap).
    @pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/none"])
    def test_an_unreachable_database_is_one_line(self, tmp_path, url):
        done = run("audit-verify", database_url=url, cwd=tmp_path)
        assert done.returncode == 3
        assert done.stderr.startswith("rekisteri: the database is not reachable")
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.commits  # the command reads and writes the test's database from another process
class TestResetPassword:
    async def test_break_glass_prints_a_one_time_password_lifts_the_lock_and_audits(
            self, client, controller, make_user, database_url, tmp_path):
        user = await make_user("controller")
        for _ in range(5):
            await password_login(client, user.email, "wrong password!!")
        assert (await password_login(client, user.email, PASSWORD)).status_code == 429
        done = run("reset-password", "--email", user.email.upper(), database_url=database_url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        password = done.stdout.strip().splitlines()[-1]
        issued = await password_login(client, user.email, password)
        assert issued.status_code == 200 and issued.json()["scope"] == "password:change"
        assert (await password_login(client, user.email, PASSWORD)).status_code == 401  # the old one is gone
        audit = (await client.get("/v1/audit", params={"action": "user.password_reset"},
                                  headers=controller.headers)).json()["items"]
        entry = next(e for e in audit if e["resource_id"] == user.id)
        assert entry["actor_type"] == "system"

    def test_an_unknown_email_is_one_line(self, database_url, tmp_path):
        done = run("reset-password", "--email", "nobody-here@example.com", database_url=database_url, cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.strip() == "rekisteri: no account with this email"


@pytest.mark.commits
class TestBootstrapProfile:
    async def test_the_profile_loads_when_a_controller_exists(self, client, controller, register_profile,
                                                             database_url, tmp_path):
        before = (await client.get("/v1/register", headers=controller.headers)).json()["number"]
        profile = tmp_path / "profile.json"
        profile.write_text(json.dumps(combined_profile()))
        done = run("bootstrap", "--profile", str(profile), database_url=database_url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "register profile loaded" in done.stdout and "none created" in done.stdout
        assert (await client.get("/v1/register", headers=controller.headers)).json()["number"] == before + 1

    def test_without_a_profile_it_points_to_reset_password(self, controller, database_url, tmp_path):
        done = run("bootstrap", "--email", "x@example.com", "--name", "X", database_url=database_url, cwd=tmp_path)
        assert done.returncode == 2 and "reset-password" in done.stderr

    def test_a_fresh_database_gets_both(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        assert run("migrate", database_url=url, cwd=tmp_path).returncode == 0
        profile = Path(__file__).resolve().parents[1] / "profiles" / "uniikkiaani.json"
        done = run("bootstrap", "--email", "boss@example.com", "--name", "Boss", "--profile", str(profile),
                   database_url=url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        assert "register profile loaded" in lines[0] and len(lines[-1]) == 20


@pytest.mark.commits
class TestRequestsDue:
    def test_nothing_overdue_exits_zero(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'calm.db'}"
        assert run("migrate", database_url=url, cwd=tmp_path).returncode == 0
        done = run("requests", "due", database_url=url, cwd=tmp_path)
        assert done.returncode == 0 and json.loads(done.stdout)["overdue"] == 0

    async def test_an_overdue_request_exits_one(self, client, controller, register_profile, database_url, tmp_path):
        received = (service_clock.utcnow() - timedelta(days=70)).isoformat()
        filed = await client.post("/v1/requests", headers=controller.headers, json={
            "type": "access", "channel": "letter", "received_at": received,
            "requester": {"name": "Maija Myöhäinen", "email": "myohainen@example.com"}})
        assert filed.status_code == 201, filed.text
        try:
            done = run("requests", "due", database_url=database_url, cwd=tmp_path)
            assert done.returncode == 1, done.stderr
            assert json.loads(done.stdout)["overdue"] >= 1
            assert "overdue" in done.stderr
        finally:
            closed = await client.post(f"/v1/requests/{filed.json()['id']}/transitions", headers=controller.headers,
                                       json={"action": "withdraw", "reason": "test over"})
            assert closed.status_code == 200, closed.text


@pytest.mark.commits
class TestMigrateLock:
    def test_a_second_migration_waits_for_the_first(self, database_url, is_postgres, tmp_path):
        """Hold the lock a running migration holds; `rekisteri migrate` says it waits, and finishes once it is free."""
        if is_postgres:
            conn = psycopg.connect(make_url(database_url).set(drivername="postgresql").render_as_string(False),
                                   autocommit=True)
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            release = lambda: conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))  # noqa: E731
        else:
            handle = open(f"{make_url(database_url).database}.migrate-lock", "a")  # noqa: SIM115
            fcntl.flock(handle, fcntl.LOCK_EX)
            release = lambda: fcntl.flock(handle, fcntl.LOCK_UN)  # noqa: E731
        proc = _popen("migrate", database_url=database_url, cwd=tmp_path)
        try:
            first = proc.stdout.readline()
            assert "waiting" in first
            assert proc.poll() is None  # it cannot be done: the lock is still ours
        finally:
            release()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "database migrated to" in out

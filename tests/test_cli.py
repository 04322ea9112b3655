"""The `rekisteri` command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import _free_port

CLI = str(Path(sys.executable).with_name("rekisteri"))


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REKISTERI_")}
    return subprocess.run([CLI, *args], cwd=cwd, env={**environment, **(env or {})}, capture_output=True,
                          text=True, timeout=120)


class TestBootstrap:
    def test_migrate_then_bootstrap_prints_the_password_last_and_refuses_twice(self, tmp_path):
        assert run("migrate", cwd=tmp_path).returncode == 0
        first = run("bootstrap", "--email", "Boss@Example.com", "--name", "Boss", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        password = first.stdout.strip().splitlines()[-1]
        assert len(password) == 20 and password.isalnum()
        second = run("bootstrap", "--email", "other@example.com", "--name", "Other", cwd=tmp_path)
        assert second.returncode == 2
        assert "already exists" in second.stderr
        assert (tmp_path / "rekisteri.db").exists()  # the embedded default lives in the working directory

    def test_children_of_age_reports_only_a_count(self, tmp_path):
        assert run("migrate", cwd=tmp_path).returncode == 0
        done = run("children", "of-age", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "flagged 0 children who reached the guardian age (GET /v1/registrants?attention=true)"

    def test_production_refuses_to_start_with_defaults(self, tmp_path):
        done = run("migrate", cwd=tmp_path, env={"REKISTERI_ENV": "production"})
        assert done.returncode == 2
        assert "REKISTERI_DATABASE_URL" in done.stderr


class TestUp:
    def test_first_start_migrates_bootstraps_and_serves(self, tmp_path):
        port = _free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("REKISTERI_")}
        proc = subprocess.Popen([CLI, "up", "--port", str(port)], cwd=tmp_path, env=environment,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            lines = []
            while not any("API documentation" in line for line in lines):
                line = proc.stdout.readline()
                assert line, "".join(lines)
                lines.append(line)
            password = next(lines[i + 1].strip() for i, l in enumerate(lines) if "one-time password" in l)
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(base + "/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            r = httpx.post(base + "/v1/auth/token", data={"grant_type": "password",
                                                          "username": "controller@example.com", "password": password})
            assert r.status_code == 200, r.text
            assert r.json()["scope"] == "password:change"
            assert (tmp_path / ".rekisteri-jwt-secret").exists()  # generated on first start, kept
        finally:
            proc.terminate()
            proc.wait(timeout=10)

"""The container recipe, parsed (no Docker engine needed): a multi-stage build from the hashed lock file,
a non-editable wheel, production mode, non-root, a health check; compose with db, migrate, api, worker, mail."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=~! ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


class TestDockerfile:
    def test_two_stages_the_second_from_the_first(self):
        steps = dockerfile()
        stages = [args for ins, args in steps if ins == "FROM"]
        assert len(stages) == 2 and stages[0].endswith("AS build") and stages[1].endswith("AS run")
        run_stage = steps[[i for i, (ins, _) in enumerate(steps) if ins == "FROM"][1]:]
        assert any(ins == "COPY" and args.startswith("--from=build") for ins, args in run_stage)
        assert not any(ins == "COPY" and args.split()[0] in ("app", ".") for ins, args in run_stage)  # no source tree

    def test_installs_from_the_lock_file_with_hashes_and_a_plain_wheel(self):
        runs = " ".join(args for ins, args in dockerfile() if ins == "RUN")
        assert "--require-hashes" in runs and "-r requirements.lock" in runs
        assert "pip wheel" in runs and "rekisteri-*.whl" in runs
        assert " -e " not in runs and "--editable" not in runs

    def test_production_non_root_health_checked_and_no_migration_at_start(self):
        steps = dockerfile()
        env = " ".join(args for ins, args in steps if ins == "ENV")
        assert "REKISTERI_ENV=production" in env
        users = [args for ins, args in steps if ins == "USER"]
        assert users and users[-1].split(":")[0] not in ("root", "0")
        health = [args for ins, args in steps if ins == "HEALTHCHECK"]
        assert health and "/healthz" in health[0]
        start = " ".join(args for ins, args in steps if ins in ("CMD", "ENTRYPOINT"))
        assert "serve" in start and "migrate" not in start

    def test_every_copied_path_exists(self):
        for ins, args in dockerfile():
            if ins == "COPY" and not args.startswith("--from"):
                for source in args.split()[:-1]:
                    assert (ROOT / source).exists(), source


class TestLockFile:
    def test_every_pin_has_hashes_and_every_dependency_is_pinned(self):
        text = (ROOT / "requirements.lock").read_text()
        blocks = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)", text, re.M)
        pinned = {name.lower().replace("_", "-") for name, _, _ in blocks}
        assert len(blocks) == len(re.findall(r"^[A-Za-z0-9_.\-]+==", text, re.M))  # no pin without a hash
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        wanted = {_name(requirement) for requirement in project["dependencies"]}
        assert wanted <= pinned, wanted - pinned


class TestCompose:
    def compose(self) -> dict:
        return yaml.safe_load((ROOT / "compose.yaml").read_text())

    def test_services(self):
        services = self.compose()["services"]
        assert {"db", "migrate", "api", "worker", "mail"} <= set(services)
        assert services["db"]["image"].startswith("postgres:")
        assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"
        assert services["worker"]["command"] == ["worker"]
        assert services["api"]["command"][0] == "serve"

    def test_the_api_and_worker_start_after_the_migration_in_production(self):
        services = self.compose()["services"]
        for name in ("api", "worker"):
            assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
            assert services[name]["environment"]["REKISTERI_ENV"] == "production"
            assert services[name]["environment"]["REKISTERI_DATABASE_URL"].startswith("postgresql://")
            assert services[name]["environment"]["REKISTERI_SMTP_HOST"] == "${REKISTERI_SMTP_HOST:-mail}"
            assert services[name]["build"] == "."

    def test_the_env_example_names_what_production_needs(self):
        example = (ROOT / ".env.example").read_text()
        for name in ("POSTGRES_PASSWORD", "REKISTERI_JWT_SECRET", "REKISTERI_ERASURE_KEYS", "REKISTERI_PUBLIC_BASE_URL"):
            assert re.search(rf"^{name}=", example, re.M), name

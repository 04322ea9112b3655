"""Logs without personal data: the real service and worker, personal data through every endpoint family, all output grepped."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.core.logs import JsonFormatter, redact
from tests.conftest import TEST_SECRET, _free_port, bearer

CLI = str(Path(sys.executable).with_name("rekisteri"))


def _env(database_url: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REKISTERI_")}
    return {**base, "REKISTERI_DATABASE_URL": database_url, "REKISTERI_JWT_SECRET": TEST_SECRET,
            "REKISTERI_WORKER_IN_PROCESS": "false", "REKISTERI_LOG_FORMAT": "json", **extra}


@pytest.fixture
def served(database_url, tmp_path):
    """`rekisteri serve` with everything it prints going to a file; yields (base URL, log path)."""
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as out:
        proc = subprocess.Popen([CLI, "serve", "--port", str(port)], env=_env(database_url), cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, log_path
    finally:
        proc.terminate()
        proc.wait(timeout=15)


class Secrets:
    """Personal data (and credentials) no log line may contain, in every spelling a log could use."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.given, self.family = f"Lokimaija{tag}", f"Lokinen{tag}"
        self.email = f"lokimaija.{tag}@example.fi"
        digits = f"{random.randint(1_000_000, 9_999_999)}"
        self.phone_written, self.phone_e164 = f"040 {digits}", f"+35840{digits}"
        self.digits = digits
        self.note = f"Salainen huomio {tag}"
        self.values: list[str] = []

    def all(self) -> list[str]:
        """Every string to grep for."""
        plain = [self.given, self.family, self.email, self.phone_e164, self.digits, self.note, *self.values]
        return plain + [quote(v, safe="") for v in plain] + [quote(v) for v in plain]


async def _exercise(http: httpx.AsyncClient, controller, s: Secrets, tag: str) -> list[str]:
    """One call or more per endpoint family, each carrying personal data; the request ids answered."""
    h = controller.headers
    ids: list[str] = []

    async def call(method: str, url: str, **kwargs) -> httpx.Response:
        r = await http.request(method, url, **kwargs)
        ids.append(r.headers["x-request-id"])
        return r

    # auth: a wrong password for a person's email, a user with a name and email, a client
    await call("POST", "/v1/auth/token", data={"grant_type": "password", "username": s.email, "password": "Väärä salasana 1"})
    staff_email = f"henkilokunta.{tag}@example.fi"
    s.values.append(staff_email)
    user = await call("POST", "/v1/users", headers=h, json={"email": staff_email, "full_name": f"{s.given} Staff",
                                                            "role": "staff"})
    assert user.status_code == 201, user.text
    s.values.append(user.json()["one_time_password"])
    otp_login = await call("POST", "/v1/auth/token", data={"grant_type": "password", "username": staff_email,
                                                          "password": user.json()["one_time_password"]})
    s.values.append(otp_login.json()["access_token"])
    client = await call("POST", "/v1/clients", headers=h, json={"name": f"{s.family} kassa", "role": "integration",
                                                                 "system": f"kassa{tag}"})
    s.values += [client.json()["client_secret"]]
    token = await call("POST", "/v1/auth/token", data={"grant_type": "client_credentials",
                                                       "client_id": client.json()["client_id"],
                                                       "client_secret": client.json()["client_secret"]})
    s.values.append(token.json()["access_token"])
    s.values.append(controller.token)
    await call("GET", "/v1/auth/me", headers=h)
    # register
    await call("GET", "/v1/register/statement?lang=fi")
    # registrants: create, look up by email and phone in the query string, read, change, records
    person = {"kind": "person", "given_name": s.given, "family_name": s.family, "email": s.email,
              "phone": s.phone_written, "language": "fi"}
    created = await call("POST", "/v1/registrants", headers=h, json=person)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    await call("GET", f"/v1/registrants?email={quote(s.email)}&phone={quote(s.phone_e164)}", headers=h)
    await call("GET", f"/v1/registrants?email={s.email}", headers=h)
    await call("GET", f"/v1/registrants/{rid}", headers=h)
    bad = await call("POST", "/v1/registrants", headers=h, json={**person, "email": f"{s.given}@", "phone": "x"})
    assert bad.status_code == 422
    await call("POST", f"/v1/registrants/{rid}/records", headers=h,
               json={"type": "order", "occurred_at": "2026-11-01T10:00:00+02:00", "external_id": f"o-{tag}",
                     "data": {"product": s.note}})
    # consents and the audience
    await call("POST", f"/v1/registrants/{rid}/consents", headers=h,
               json={"action": "grant", "purpose": "newsletter", "channel": "email", "source": "web_form",
                     "evidence": {"text": s.note, "policy_version": "2026-11"}})
    await call("GET", "/v1/audience?purpose=newsletter&channel=email", headers=h)
    # waitlist: join with email and phone, a notice, an unsubscribe with a token
    waiting = {"given_name": s.given, "family_name": s.family, "age": 34, "email": f"w.{s.email}",
               "phone": s.phone_written, "language": "fi", "channels": ["email", "sms"],
               "interests": ["cancellations"], "tags": [tag], "evidence": {"text": s.note, "policy_version": "2026-11"}}
    s.values.append(f"w.{s.email}")
    joined = await call("POST", "/v1/waitlist", headers=h, json=waiting)
    assert joined.status_code == 201, joined.text
    await call("POST", "/v1/waitlist/notifications", headers=h,
               json={"interest": "cancellations", "message": s.note, "tags": [tag], "mode": "all",
                     "slot": {"starts_at": "2027-01-15T10:00:00+02:00", "description": s.note}})
    await call("POST", "/v1/waitlist/unsubscribe", json={"token": f"{s.email}-not-a-token"})
    # data-subject requests
    filed = await call("POST", "/v1/requests", headers=h,
                       json={"type": "access", "channel": "letter", "registrant_id": rid,
                             "requester": {"name": f"{s.given} {s.family}", "email": s.email}})
    assert filed.status_code == 201, filed.text
    await call("GET", f"/v1/requests/{filed.json()['id']}", headers=h)
    # audit, statistics, metrics
    await call("GET", f"/v1/audit?registrant_id={rid}", headers=h)
    await call("GET", "/v1/stats/requests", headers=h)
    await call("GET", "/metrics", headers=h)
    # no route at all, with personal data in the path and the query string
    await call("GET", f"/v1/nowhere/{s.email}?phone={s.phone_e164}")
    return ids


def _leaks(output: str, secrets: Secrets) -> list[str]:
    return [value for value in secrets.all() if value and value in output]


@pytest.mark.commits  # the served process and the worker read what the test wrote
class TestNoPersonalDataInLogs:
    async def test_every_endpoint_family_and_the_worker(self, served, controller, register_profile, database_url,
                                                        tmp_path):
        base, log_path = served
        secrets, tag = Secrets(), uuid.uuid4().hex[:8]
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            request_ids = await _exercise(http, controller, secrets, tag)
        # The worker delivers what the calls queued (console backends: one masked line per message).
        worker = subprocess.run([CLI, "worker", "--once"], env=_env(database_url, REKISTERI_DELIVERY="console"),
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert worker.returncode == 0, worker.stderr
        time.sleep(0.5)  # let the server flush its last lines before reading them
        served_output = log_path.read_text()
        everything = served_output + worker.stdout + worker.stderr

        assert _leaks(everything, secrets) == []
        access = [json.loads(line) for line in served_output.splitlines()
                  if line.startswith("{") and json.loads(line)["logger"] == "rekisteri.access"]
        assert {entry["request_id"] for entry in access} >= set(request_ids)  # every line carries its request id
        routes = {entry["route"] for entry in access}
        assert {"/v1/registrants", "/v1/registrants/{registrant_id}", "/v1/auth/token", "<unmatched>"} <= routes
        assert all("?" not in entry["message"] for entry in access)
        assert any(entry["principal"] == f"user:{controller.id}" for entry in access)
        assert "uvicorn.access" not in served_output and 'HTTP/1.1"' not in served_output  # uvicorn's own is off
        console = [line for line in (worker.stdout + worker.stderr).splitlines() if "console backend" in line]
        assert any("***@example.fi" in line for line in console)  # the documented console line, masked
        assert any(" sms " in line and "+358" in line and "*" in line for line in console)
        assert "outbox: batch" in worker.stdout  # the worker prints a line per batch


class TestDatabaseErrorsHideParameters:
    async def test_a_failing_statement_does_not_carry_its_values(self, app):
        secret = f"piilo.{uuid.uuid4().hex[:8]}@example.fi"
        async with app.state.db.engine.connect() as conn:
            with pytest.raises(DBAPIError) as failure:
                await conn.execute(text("INSERT INTO user_account (id) VALUES (:v)"), {"v": secret})
        assert "SQL parameters hidden" in str(failure.value)
        # asyncpg quotes a value it cannot convert in its own message: the log line is redacted all the same.
        record = logging.makeLogRecord({"name": "rekisteri", "levelno": logging.ERROR, "levelname": "ERROR",
                                        "msg": "unhandled error", "exc_info": (type(failure.value), failure.value,
                                                                               failure.value.__traceback__)})
        assert secret not in JsonFormatter().format(record)


class TestRedaction:
    @pytest.mark.parametrize(("line", "gone"), [
        ("duplicate key (email)=(maija.m@example.fi)", "maija.m@"),
        ("to +358401234567 failed", "+358401234567"),
        ("soita 040 123 4567.", "123 4567"),
    ])
    def test_emails_and_phones_are_masked_in_any_line(self, line, gone):
        assert gone not in redact(line)

    def test_times_durations_and_addresses_stay(self):
        line = "GET /v1/registrants 200 12.3ms at 2026-11-29T10:00:00 from 10.0.0.1:50000"
        assert redact(line) == line

"""Helpers of the request tests: a rights policy that accepts every channel, registrants, requests, actions."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.core import clock as service_clock
from app.outbox.worker import Worker
from tests.conftest import bearer, combined_profile, password_login
from tests.outbox.conftest import db, http_server, outbox_settings, receiver, smtp, smtp_server  # noqa: F401 - fixtures

POLICY = {"free_access_interval_months": 6, "response_time": "P1M", "extension": "P2M",
          "request_channels": ["letter", "in_person", "email", "web_form", "api"], "signature_required": True,
          "guardian_age": 13}


async def drain(db, settings) -> None:
    """One outbox worker sending everything due."""
    worker = Worker(db, settings)
    try:
        await worker.drain()
    finally:
        await worker.aclose()


def profile_with(**policy: Any) -> dict[str, Any]:
    """The combined test profile with its rights policy changed."""
    profile = copy.deepcopy(combined_profile())
    profile["rights_policy"] = {**profile["rights_policy"], **POLICY, **policy}
    return profile


@pytest.fixture
async def policy(client: httpx.AsyncClient, controller, register_profile):
    """Make the rights policy the request tests assume (every channel, signatures required) the one in force
    for this test; `await policy(**changes)` writes another (each test's writes are rolled back)."""

    async def write(**changes: Any) -> None:
        r = await client.put("/v1/register", headers=controller.headers, json=profile_with(**changes))
        assert r.status_code == 200, r.text

    await write()
    return write


class Me:
    """The controller, with a token that stays valid when the test moves the service clock."""

    def __init__(self, http: httpx.AsyncClient, controller) -> None:
        self.http, self.controller, self.token = http, controller, controller.token

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    async def travel(self, when: datetime) -> None:
        """Stop the clock at `when` and log in again, so the token is issued then."""
        service_clock.freeze(when)
        r = await password_login(self.http, self.controller.email, self.controller.password)
        assert r.status_code == 200, r.text
        self.token = r.json()["access_token"]


@pytest.fixture
def me(client: httpx.AsyncClient, controller, clock) -> Me:
    """The controller as a time traveller (the clock is reset after the test)."""
    return Me(client, controller)


@pytest.fixture
def allow_local_callbacks(app):
    """Let callbacks reach 127.0.0.1 over http for one test (the SSRF allowlist)."""
    original = app.state.settings
    app.state.settings = original.model_copy(update={"callback_allowlist": ["127.0.0.1"]})
    yield
    app.state.settings = original


def person(**overrides: Any) -> dict[str, Any]:
    """A valid adult person."""
    body = {"kind": "person", "given_name": "Maija", "family_name": "Meikäläinen",
            "email": f"maija.{uuid.uuid4().hex[:10]}@example.com", "phone": "040 581 2799", "language": "fi"}
    body.update(overrides)
    return body


def filing(type_: str = "access", **overrides: Any) -> dict[str, Any]:
    """A request body: by default an access request by email, about nobody yet."""
    body: dict[str, Any] = {"type": type_, "requester": {"name": "Maija Meikäläinen", "email": "maija@example.com"},
                            "channel": "email"}
    if type_ == "rectification":
        body["changes"] = [{"field": "family_name", "current_value": "Meikalainen", "corrected_value": "Meikäläinen"}]
    if type_ == "objection":
        body["purposes"] = ["direct_marketing"]
    body.update(overrides)
    return body


@pytest.fixture
def registrant(client: httpx.AsyncClient, me, policy):
    """Create a registrant and return its id."""

    async def make(**overrides: Any) -> str:
        r = await client.post("/v1/registrants", headers=me.headers, json=person(**overrides))
        assert r.status_code == 201, r.text
        return r.json()["id"]

    return make


@pytest.fixture
def file(client: httpx.AsyncClient, me, policy):
    """File a request as an account (the controller by default) and return its body (asserting 201)."""

    async def make(type_: str = "access", account=None, **overrides: Any) -> dict[str, Any]:
        r = await client.post("/v1/requests", headers=(account or me).headers, json=filing(type_, **overrides))
        assert r.status_code == 201, r.text
        return r.json()

    return make


@pytest.fixture
def act(client: httpx.AsyncClient, me):
    """POST a transition; the response."""

    async def post(request_id: str, action: str, account=None, **fields: Any) -> httpx.Response:
        return await client.post(f"/v1/requests/{request_id}/transitions", headers=(account or me).headers,
                                 json={"action": action, **fields})

    return post


@pytest.fixture
def advance(act):
    """Move a request through verify (linking a registrant), start and complete, asserting each step."""

    async def run(request_id: str, registrant_id: str | None, until: str = "completed", **complete: Any) -> dict:
        steps = [("verify", {"method": "strong_electronic_identification", "evidence_ref": "login-7",
                             **({"registrant_id": registrant_id} if registrant_id else {})}),
                 ("start", {}), ("complete", complete)]
        body: dict = {}
        for action, fields in steps:
            r = await act(request_id, action, **fields)
            assert r.status_code == 200, r.text
            body = r.json()
            if body["status"] == until:
                break
        return body

    return run

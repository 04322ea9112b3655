"""Helpers of the waitlist tests: entry and notice bodies, the outbox receivers, a worker to drain them."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest

from app.core import clock
from app.core.config import Settings
from app.db.session import Database
from app.outbox.worker import Worker
from tests.outbox.conftest import db, http_server, outbox_settings, receiver, smtp, smtp_server  # noqa: F401


def phone() -> str:
    """A Finnish mobile number no other test uses (as people write it)."""
    return f"040 {random.randint(1_000_000, 9_999_999)}"


def entry(tag: str, **overrides: Any) -> dict[str, Any]:
    """A valid adult joining for cancellations by email and SMS, tagged so a test's notices reach only its own."""
    body = {"given_name": "Maija", "family_name": "Meikäläinen", "age": 34,
            "email": f"maija.{uuid.uuid4().hex[:10]}@example.fi", "phone": phone(), "language": "fi",
            "channels": ["email", "sms"], "interests": ["cancellations"], "tags": [tag],
            "evidence": {"text": "Haluan ilmoituksia vapautuvista tunneista.", "policy_version": "2026-11"}}
    body.update(overrides)
    return body


def notice(tag: str, **overrides: Any) -> dict[str, Any]:
    """A notification of a cancellation slot tomorrow for the entries with this tag."""
    body = {"interest": "cancellations", "message": "Peruutusaika vapautui!",
            "slot": {"starts_at": (clock.utcnow() + timedelta(days=1)).isoformat(),
                     "description": "Laulutunti, Riihimäki"}, "tags": [tag], "mode": "all"}
    body.update(overrides)
    return body


@pytest.fixture
def tag() -> str:
    """A tag only this test uses."""
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture
def join(client, controller, register_profile):
    """Join the list (as the controller unless an account is given); the response body."""

    async def make(body: dict[str, Any], account=None, status: int = 201) -> dict[str, Any]:
        r = await client.post("/v1/waitlist", headers=(account or controller).headers, json=body)
        assert r.status_code == status, r.text
        return r.json()

    return make


async def drain(database: Database, settings: Settings) -> Any:
    """One worker delivering everything due."""
    worker = Worker(database, settings)
    try:
        return await worker.drain()
    finally:
        await worker.aclose()

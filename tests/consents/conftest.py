"""Helpers of the consent tests: registrants to record consents for."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import text


def person(**overrides: Any) -> dict[str, Any]:
    """A valid adult person with their own email and phone (audiences list an address once)."""
    tag = uuid.uuid4().hex[:10]
    body = {"kind": "person", "given_name": "Maija", "family_name": "Meikäläinen",
            "email": f"maija.{tag}@example.com", "phone": f"040 {uuid.uuid4().int % 10**7:07d}", "language": "fi"}
    body.update(overrides)
    return body


# The guardian registrant `new_registrant` linked to each child it made (child id -> guardian id).
GUARDIANS: dict[str, str] = {}


def guardian_body(**overrides: Any) -> dict[str, Any]:
    """An adult guardian, a registrant of its own."""
    return person(given_name="Hanna", family_name="Huoltaja", email=f"hanna.{uuid.uuid4().hex[:8]}@example.com",
                  **overrides)


def child(guardian: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A ten-year-old; `new_registrant` first makes its guardian (the body given, or a new Hanna) and links it."""
    today = date.today()
    body = person(date_of_birth=date(today.year - 10, 1, 15).isoformat(), email=None, **overrides)
    return {**body, "_guardian": guardian or guardian_body()}


def by_guardian(child_id: str, **evidence: Any) -> dict[str, Any]:
    """Evidence of an event the child's linked guardian expressed."""
    return {"given_by": "guardian", "guardian_id": GUARDIANS[child_id], **evidence}


def grant(purpose: str = "newsletter", channel: str | None = "email", action: str = "grant", **extra: Any) -> dict:
    """A ledger event body."""
    body = {"action": action, "purpose": purpose, "source": "web_form",
            "evidence": {"text": "Haluan uutiskirjeen.", "policy_version": "2026-11", "reference": "form-7"}}
    if channel:
        body["channel"] = channel
    body.update(extra)
    return body


@pytest.fixture
def new_registrant(client: httpx.AsyncClient, controller, register_profile):
    """Create a registrant (as the controller unless an account is given) and return its id."""

    async def make(body: dict[str, Any] | None = None, account=None) -> str:
        headers = (account or controller).headers
        body = dict(body or person())
        guardian_id = None
        if "_guardian" in body:
            made = await client.post("/v1/registrants", headers=headers, json=body.pop("_guardian"))
            assert made.status_code == 201, made.text
            guardian_id = made.json()["id"]
            body["guardian_ids"] = [guardian_id]
        r = await client.post("/v1/registrants", headers=headers, json=body)
        assert r.status_code == 201, r.text
        if guardian_id:
            GUARDIANS[r.json()["id"]] = guardian_id
        return r.json()["id"]

    return make


@pytest.fixture
def set_status(app):
    """Put a registrant into a status no endpoint of this issue sets (restriction, erasure)."""

    async def change(registrant_id: str, status: str) -> None:
        async with app.state.db.engine.begin() as conn:
            await conn.execute(text("UPDATE registrant SET status = :s WHERE id = :i"),
                               {"s": status, "i": uuid.UUID(registrant_id).hex if "sqlite" in str(conn.engine.url)
                                else registrant_id})

    return change


@pytest.fixture
def staff(accounts):
    """The staff account."""
    return accounts["staff"]


@pytest.fixture
def staff_headers(staff):
    """The staff account's authorisation header."""
    return staff.headers

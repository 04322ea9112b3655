"""Helpers of the registrants tests: payloads and a creator."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest


def ext_id() -> str:
    """An external id no other test uses."""
    return uuid.uuid4().hex[:12]


def person(**overrides: Any) -> dict[str, Any]:
    """A valid adult person."""
    body = {"kind": "person", "given_name": "Maija", "family_name": "Meikäläinen",
            "email": f"Maija.{ext_id()}@Example.com", "phone": "040 581 2799", "language": "fi"}
    body.update(overrides)
    return body


def organisation(**overrides: Any) -> dict[str, Any]:
    """A valid organisation with a contact person."""
    body = {"kind": "organisation", "name": "Laulukoulu Oy", "business_id": "0112038-9",
            "contact_persons": [{"name": "Kalle Kontakti", "email": "kalle@example.com"}], "language": "fi"}
    body.update(overrides)
    return body


@pytest.fixture
def create(client: httpx.AsyncClient):
    """POST a registrant as an account and return its body (asserting 201)."""

    async def make(account, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await client.post("/v1/registrants", headers=account.headers, json=body or person())
        assert r.status_code == 201, r.text
        return r.json()

    return make

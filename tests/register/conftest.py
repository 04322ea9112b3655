"""Helpers of the register tests: the example profiles and writing a profile through the API."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
_loaded = {name: json.loads((PROFILES / f"{name}.json").read_text(encoding="utf-8"))
           for name in ("uniikkiaani", "selfluencer")}


def example(name: str = "uniikkiaani") -> dict[str, Any]:
    """A fresh copy of an example profile document."""
    return copy.deepcopy(_loaded[name])


async def put_profile(client: httpx.AsyncClient, headers: dict[str, str], document: dict[str, Any]) -> httpx.Response:
    """PUT /v1/register."""
    return await client.put("/v1/register", headers=headers, json=document)


async def latest_number(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """The number of the newest version (0 if none)."""
    items = (await client.get("/v1/register/versions", headers=headers, params={"limit": 1})).json()["items"]
    return items[0]["number"] if items else 0


@pytest.fixture
async def current(client, controller):
    """Write an example profile as the current version and return the response body."""

    async def write(name: str = "uniikkiaani", document: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await put_profile(client, controller.headers, document or example(name))
        assert response.status_code == 200, response.text
        return response.json()

    return write

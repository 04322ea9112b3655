"""Helpers of the register tests: the example profiles and writing a profile through the API."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import isodate
import pytest

from app.core import clock as service_clock
from app.register import retention

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


HELSINKI = ZoneInfo("Europe/Helsinki")


def noon(day: date) -> datetime:
    """Midday of a day in Helsinki, the combined profile's time zone."""
    return datetime.combine(day, time(12), tzinfo=HELSINKI)


def later(moment: datetime, duration: str, days: int = 0) -> datetime:
    """Midday of the day a calendar duration after a moment (in Helsinki), plus some days."""
    day = (moment.astimezone(HELSINKI) + isodate.parse_duration(duration)).date()
    return noon(day + timedelta(days=days))


async def purge_at(app, at: datetime, *, dry_run: bool = False, rules=None) -> dict:
    """Run the purge with the service clock frozen at `at`; the outcomes by category."""
    service_clock.freeze(at)
    wiring = app.state.wiring
    async with app.state.db.sessionmaker() as session:
        outcomes = await retention.purge(session, rules=rules or wiring.retention_rules,
                                         holds=wiring.retention_holds, dry_run=dry_run)
    return {o.rule.category: o for o in outcomes}

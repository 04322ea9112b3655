"""The hostile-input corpus of issue 16: every reproduction is a 422 (or 400) problem document naming the field,
the same on SQLite and on PostgreSQL, and nothing is written."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from app.core import clock as service_clock
from tests.conftest import unique_email

NAIVE = "2020-01-01T00:00:00"
FAR_FUTURE = "9999-12-31T23:59:59-12:00"
FAR_PAST = "0001-01-01T00:00:00+14:00"
BAD_CURSORS = ("WyJ4Il0", "WzFlNDAwXQ", "WyJ4IiwieSJd", "bm90IGpzb24", "e30", "WzEsMiwzXQ", "W3RydWVd", "WyIiXQ",
               "WzkyMjMzNzIwMzY4NTQ3NzU4MDhd", "W05hTl0", "!!")
LISTS = ("/v1/audit", "/v1/users", "/v1/clients", "/v1/register/versions", "/v1/registrants", "/v1/requests",
         "/v1/waitlist")
# Characters a name may not hold: NUL, ESC, CR, LF, DEL, a C1 control, a bidi override and isolate,
# zero-width space and joiner, the byte-order mark, a line separator.
BAD_NAME_CHARS = ("\x00", "\x1b", "\r", "\n", "\x7f", "\x85", "\u202e", "\u2066", "\u200b", "\u200d", "\ufeff",
                  "\u2028")


def person(**overrides: Any) -> dict[str, Any]:
    """A valid adult."""
    body = {"kind": "person", "given_name": "Maija", "family_name": "Meikäläinen",
            "email": unique_email("maija"), "language": "fi"}
    body.update(overrides)
    return body


def assert_422(r, *field: str | int) -> dict[str, Any]:
    """A validation problem naming the field."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == "urn:rekisteri:problem:validation-error"
    if field:
        assert any(list(e["loc"][-len(field):]) == list(field) for e in body["errors"]), body
    return body


@pytest.fixture
async def registrant(client, controller, register_profile) -> str:
    r = await client.post("/v1/registrants", headers=controller.headers, json=person())
    assert r.status_code == 201, r.text
    return r.json()["id"]


class TestNulBytes:
    async def test_token_endpoint_without_logging_in(self, client):
        r = await client.post("/v1/auth/token", data={"grant_type": "password", "username": "a\x00b@example.com",
                                                      "password": "whatever-it-is"})
        assert_422(r, "username")

    @pytest.mark.parametrize(("url", "field"), [("/v1/registrants?name=%00", "name"),
                                                ("/v1/audit?action=a%00", "action"),
                                                ("/v1/audit?actor_id=%00", "actor_id"),
                                                ("/v1/registrants?email=a%00@b.fi", "email")])
    async def test_query(self, client, controller, url, field):
        assert_422(await client.get(url, headers=controller.headers), field)

    async def test_path(self, client, controller, register_profile):
        body = {k: v for k, v in person().items()}
        r = await client.put("/v1/registrants/by-ref/booking/a%00", headers=controller.headers, json=body)
        assert_422(r, "external_id")

    async def test_registrant_user_client_and_waitlist_names(self, client, controller, register_profile):
        r = await client.post("/v1/registrants", headers=controller.headers, json=person(given_name="A\u0000"))
        assert_422(r, "given_name")
        r = await client.post("/v1/users", headers=controller.headers,
                              json={"email": unique_email(), "full_name": "A\u0000", "role": "staff"})
        assert_422(r, "full_name")
        r = await client.post("/v1/clients", headers=controller.headers,
                              json={"name": "A\u0000", "role": "integration", "system": "booking"})
        assert_422(r, "name")
        r = await client.post("/v1/waitlist", headers=controller.headers, json={
            "given_name": "A\u0000", "family_name": "B", "age": 30, "email": unique_email(), "channels": ["email"],
            "interests": ["cancellations"]})
        assert_422(r, "given_name")

    async def test_json_data_of_a_record(self, client, controller, registrant):
        r = await client.post(f"/v1/registrants/{registrant}/records", headers=controller.headers,
                              json={"type": "order", "occurred_at": "2026-01-01T10:00:00Z", "data": {"note": "a\u0000"}})
        assert_422(r, "data")


class TestNames:
    @pytest.mark.parametrize("char", BAD_NAME_CHARS)
    async def test_invisible_and_control_characters_are_refused(self, client, controller, register_profile, char):
        r = await client.post("/v1/registrants", headers=controller.headers,
                              json=person(family_name=f"Meik{char}äläinen"))
        assert_422(r, "family_name")

    async def test_ordinary_names_pass(self, client, controller, register_profile):
        r = await client.post("/v1/registrants", headers=controller.headers,
                              json=person(given_name="Åsa-Märta", family_name="O'Brien Núñez 李"))
        assert r.status_code == 201, r.text

    async def test_multi_line_text_keeps_line_breaks_but_not_nul(self, client, controller, register_profile):
        body = {"type": "access", "requester": {"name": "Maija M"}, "channel": "letter",
                "details": "Hei,\r\nhaluan tietoni.\n\tKiitos"}
        r = await client.post("/v1/requests", headers=controller.headers, json=body)
        assert r.status_code == 201, r.text
        r = await client.post("/v1/requests", headers=controller.headers, json={**body, "details": "a\x00"})
        assert_422(r, "details")


class TestTimes:
    @pytest.mark.parametrize("param", ["created_from", "created_to", "updated_from", "updated_to"])
    async def test_naive_filter_is_422_with_a_hint(self, client, controller, param):
        for value in ("2020-01-01", NAIVE):
            body = assert_422(await client.get(f"/v1/registrants?{param}={value}", headers=controller.headers),
                              param)
            assert "offset" in body["errors"][0]["msg"]

    @pytest.mark.parametrize("value", [NAIVE, FAR_FUTURE, FAR_PAST, "1899-12-31T23:59:59Z", "2200-01-01T00:00:00Z"])
    async def test_audit_and_request_filters(self, client, controller, value):
        assert_422(await client.get("/v1/audit", params={"from": value}, headers=controller.headers), "from")
        assert_422(await client.get("/v1/requests", params={"due_before": value}, headers=controller.headers),
                   "due_before")

    @pytest.mark.parametrize("value", [FAR_FUTURE, FAR_PAST])
    async def test_out_of_range_filter(self, client, controller, value):
        assert_422(await client.get("/v1/registrants", params={"created_from": value}, headers=controller.headers),
                   "created_from")

    @pytest.mark.parametrize("value", [NAIVE, FAR_FUTURE, FAR_PAST])
    async def test_bodies(self, client, controller, registrant, value):
        r = await client.post(f"/v1/registrants/{registrant}/records", headers=controller.headers,
                              json={"type": "order", "occurred_at": value})
        assert_422(r, "occurred_at")
        r = await client.post(f"/v1/registrants/{registrant}/consents", headers=controller.headers,
                              json={"action": "grant", "purpose": "newsletter", "channel": "letter",
                                    "source": "web_form", "evidence": {"collected_at": value}})
        assert_422(r, "collected_at")
        r = await client.post("/v1/requests", headers=controller.headers,
                              json={"type": "access", "requester": {"name": "M"}, "channel": "letter",
                                    "received_at": value})
        assert_422(r, "received_at")
        r = await client.post("/v1/waitlist/notifications", headers=controller.headers,
                              json={"interest": "cancellations", "message": "Vapaa aika",
                                    "slot": {"starts_at": value, "description": "Tunti"}})
        assert_422(r, "starts_at")

    async def test_an_offset_within_range_passes(self, client, controller, registrant):
        at = (service_clock.utcnow() - timedelta(days=1)).astimezone().isoformat()
        r = await client.post(f"/v1/registrants/{registrant}/records", headers=controller.headers,
                              json={"type": "order", "occurred_at": at})
        assert r.status_code == 201, r.text


class TestNumbersAndCursors:
    @pytest.mark.parametrize("number", ["2147483648", "9223372036854775808", "0", "-1"])
    async def test_register_version_number(self, client, controller, number):
        assert_422(await client.get(f"/v1/register/versions/{number}", headers=controller.headers), "number")

    @pytest.mark.parametrize("url", LISTS)
    @pytest.mark.parametrize("cursor", BAD_CURSORS)
    async def test_malformed_cursor(self, client, controller, register_profile, url, cursor):
        assert_422(await client.get(url, params={"cursor": cursor}, headers=controller.headers), "cursor")

    @pytest.mark.parametrize("cursor", BAD_CURSORS)
    async def test_malformed_cursor_on_nested_lists_and_audience(self, client, controller, registrant, cursor):
        for url, params in ((f"/v1/registrants/{registrant}/records", {}), (f"/v1/registrants/{registrant}/history", {}),
                            ("/v1/audience", {"purpose": "newsletter", "channel": "email"})):
            r = await client.get(url, params={**params, "cursor": cursor}, headers=controller.headers)
            assert_422(r, "cursor")

    @pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
    async def test_non_finite_json_numbers(self, client, controller, registrant, number):
        raw = '{"type": "order", "occurred_at": "2026-01-01T10:00:00Z", "data": {"total": %s}}' % number
        r = await client.post(f"/v1/registrants/{registrant}/records", content=raw,
                              headers={**controller.headers, "Content-Type": "application/json"})
        assert_422(r, "data")

    async def test_integer_wider_than_64_bits_in_json(self, client, controller, registrant):
        r = await client.post(f"/v1/registrants/{registrant}/records", headers=controller.headers,
                              json={"type": "order", "occurred_at": "2026-01-01T10:00:00Z",
                                    "data": {"n": 2**64}})
        assert_422(r, "data")


class TestSlotDescription:
    async def test_crlf_in_a_slot_description_is_refused(self, client, controller, register_profile):
        starts = (service_clock.utcnow() + timedelta(days=1)).isoformat()
        r = await client.post("/v1/waitlist/notifications", headers=controller.headers,
                              json={"interest": "cancellations", "message": "Vapaa aika", "tags": [uuid.uuid4().hex[:8]],
                                    "slot": {"starts_at": starts, "description": "Tunti\r\nBcc: x@example.com"}})
        assert_422(r, "slot", "description")


class TestUnparseableBody:
    async def test_body_that_is_not_utf8_is_a_documented_400(self, client, controller):
        r = await client.post("/v1/registrants", headers={**controller.headers, "Content-Type": "application/json"},
                              content=b'{"kind": "person", "given_name": "\xff\xfe"}')
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"] == "urn:rekisteri:problem:malformed-body"

    async def test_lone_surrogate_is_422(self, client, controller, register_profile):
        r = await client.post("/v1/registrants", headers={**controller.headers, "Content-Type": "application/json"},
                              content=b'{"kind": "person", "given_name": "\\ud800", "family_name": "X"}')
        assert_422(r, "given_name")

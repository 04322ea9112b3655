"""UniikkiLista: entries, FIFO, dedupe, consent, one-click unsubscribe, waves, delivery, limits, re-checks."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text

from app.outbox.models import OutboxMessage
from app.waitlist.models import WaitlistDelivery
from tests.conftest import ALL_ROLES
from tests.outbox.test_workers import worker_process
from tests.waitlist.conftest import drain, entry, notice

WRITERS = {"controller", "staff", "integration"}
READERS = {"controller", "staff", "auditor", "integration"}
STATS = {"controller", "staff", "auditor", "viewer"}


@pytest.fixture(autouse=True)
def roomy_limits(app):
    """Limits high enough for a test run that signs many people up with one account; tests lower them."""
    before = app.state.settings
    app.state.settings = before.model_copy(update={"waitlist_signups_per_client_per_minute": 10_000,
                                                   "waitlist_notifications_per_client_per_hour": 10_000})
    yield app.state.settings
    app.state.settings = before


def limits(app, **values):
    """Lower some limits for one test."""
    app.state.settings = app.state.settings.model_copy(update=values)


def states(body: dict) -> dict[tuple[str, str], str]:
    return {(s["purpose"], s["channel"]): s["state"] for s in body["states"]}


async def consent_states(client, controller, registrant_id: str) -> dict[tuple[str, str], str]:
    r = await client.get(f"/v1/registrants/{registrant_id}/consents", headers=controller.headers)
    assert r.status_code == 200, r.text
    return states(r.json())


async def deliveries(app, notification_id: str) -> list[WaitlistDelivery]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.execute(select(WaitlistDelivery).where(
            WaitlistDelivery.notification_id == uuid.UUID(notification_id)).order_by(WaitlistDelivery.wave))
        return list(rows.scalars())


async def messages(app, ids) -> list[OutboxMessage]:
    async with app.state.db.sessionmaker() as session:
        return list((await session.execute(select(OutboxMessage).where(OutboxMessage.id.in_(list(ids))))).scalars())


async def set_status(app, registrant_id: str, status: str) -> None:
    async with app.state.db.engine.begin() as conn:
        rid = uuid.UUID(registrant_id).hex if conn.dialect.name == "sqlite" else registrant_id
        await conn.execute(text("UPDATE registrant SET status = :s WHERE id = :i"), {"s": status, "i": rid})


class TestAuthMatrix:
    async def test_join(self, client, accounts, register_profile, tag):
        assert (await client.post("/v1/waitlist", json=entry(tag))).status_code == 401
        for role in ALL_ROLES:
            r = await client.post("/v1/waitlist", headers=accounts[role].headers, json=entry(tag))
            assert r.status_code == (201 if role in WRITERS else 403), (role, r.text)

    async def test_reads(self, client, accounts, join, tag):
        made = await join(entry(tag))
        for url in ("/v1/waitlist", f"/v1/waitlist/{made['id']}"):
            assert (await client.get(url)).status_code == 401
            for role in ALL_ROLES:
                r = await client.get(url, headers=accounts[role].headers)
                if role not in READERS:
                    assert r.status_code == 403, role
                elif role == "integration" and url != "/v1/waitlist":
                    assert r.status_code == 404, role  # a registrant the integration does not know
                else:
                    assert r.status_code == 200, (role, r.text)

    async def test_notifications(self, client, accounts, join, tag):
        await join(entry(tag))
        assert (await client.post("/v1/waitlist/notifications", json=notice(tag))).status_code == 401
        made = None
        for role in ALL_ROLES:
            r = await client.post("/v1/waitlist/notifications", headers=accounts[role].headers,
                                  json=notice(tag, mode="first_n", limit=1))
            assert r.status_code == (201 if role in WRITERS else 403), (role, r.text)
            made = made or (r.json()["id"] if r.status_code == 201 else None)
        for path in ("next", "close"):
            url = f"/v1/waitlist/notifications/{made}/{path}"
            assert (await client.post(url)).status_code == 401
            for role in sorted(set(ALL_ROLES) - WRITERS):
                assert (await client.post(url, headers=accounts[role].headers)).status_code == 403, role
        r = await client.get(f"/v1/waitlist/notifications/{made}", headers=accounts["auditor"].headers)
        assert r.status_code == 200
        assert (await client.get(f"/v1/waitlist/notifications/{made}",
                                 headers=accounts["viewer"].headers)).status_code == 403

    async def test_enrolled_and_remove(self, client, accounts, join, tag):
        made = await join(entry(tag))
        url = f"/v1/waitlist/{made['id']}"
        assert (await client.post(url + "/enrolled")).status_code == 401
        assert (await client.delete(url)).status_code == 401
        for role in sorted(set(ALL_ROLES) - WRITERS):
            assert (await client.post(url + "/enrolled", headers=accounts[role].headers)).status_code == 403, role
            assert (await client.delete(url, headers=accounts[role].headers)).status_code == 403, role

    async def test_stats(self, client, accounts, register_profile):
        assert (await client.get("/v1/stats/waitlist")).status_code == 401
        for role in ALL_ROLES:
            r = await client.get("/v1/stats/waitlist", headers=accounts[role].headers)
            assert r.status_code == (200 if role in STATS else 403), role

    async def test_unsubscribe_is_public(self, client, register_profile):
        r = await client.post("/v1/waitlist/unsubscribe", json={"token": "x" * 43})
        assert r.status_code == 404


class TestJoin:
    async def test_fifo_order_and_positions(self, client, controller, join, tag):
        made = [await join(entry(tag)) for _ in range(4)]
        r = await client.get("/v1/waitlist", headers=controller.headers, params={"tag": tag, "limit": 2})
        page1 = r.json()
        r = await client.get("/v1/waitlist", headers=controller.headers,
                             params={"tag": tag, "limit": 2, "cursor": page1["next_cursor"]})
        listed = page1["items"] + r.json()["items"]
        assert [e["id"] for e in listed] == [m["id"] for m in made]
        positions = [e["position"] for e in listed]
        assert positions == sorted(positions) and len(set(positions)) == 4
        assert positions == list(range(positions[0], positions[0] + 4))
        # The first one leaves: everyone behind moves up one place.
        await client.delete(f"/v1/waitlist/{made[0]['id']}", headers=controller.headers)
        after = (await client.get(f"/v1/waitlist/{made[3]['id']}", headers=controller.headers)).json()
        assert after["position"] == positions[3] - 1

    async def test_filters(self, client, controller, join, tag):
        sms = await join(entry(tag, channels=["sms"], email=None))
        both = await join(entry(tag, interests=["cancellations", "enrolments"]))
        got = lambda **p: client.get("/v1/waitlist", headers=controller.headers, params={"tag": tag, **p})  # noqa: E731
        assert [e["id"] for e in (await got(channel="email")).json()["items"]] == [both["id"]]
        assert [e["id"] for e in (await got(channel="sms")).json()["items"]] == [sms["id"], both["id"]]
        assert [e["id"] for e in (await got(interest="enrolments")).json()["items"]] == [both["id"]]
        assert (await got(status="left")).json()["items"] == []
        assert (await got(interest="nope")).status_code == 422

    async def test_same_person_same_interest_gets_the_entry_back(self, client, controller, join, tag):
        body = entry(tag)
        first = await join(body)
        again = await join({**body, "channels": ["email"]}, status=200)
        assert again["id"] == first["id"] and again["position"] == first["position"]
        assert again["unsubscribe_token"] is None
        other = await join({**body, "interests": ["enrolments"]})
        assert other["id"] != first["id"] and other["registrant_id"] == first["registrant_id"]
        # Found by phone alone too (written differently).
        by_phone = await join({**body, "email": None, "channels": ["sms"]}, status=200)
        assert by_phone["id"] == first["id"]

    async def test_joins_an_existing_registrant_by_email(self, client, controller, join, tag):
        r = await client.post("/v1/registrants", headers=controller.headers, json={
            "kind": "person", "given_name": "Ville", "family_name": "Virtanen", "email": "ville." + tag + "@example.fi",
            "language": "sv"})
        made = await join(entry(tag, given_name="Ville", family_name="virtanen", email="Ville." + tag + "@example.fi",
                                phone=None, channels=["email"]))
        assert made["registrant_id"] == r.json()["id"]
        # The same email with another name is another person (a registrant of its own).
        other = await join(entry(tag, email="ville." + tag + "@example.fi", phone=None, channels=["email"]))
        assert other["registrant_id"] != r.json()["id"]

    async def test_joining_records_consent_per_channel(self, client, controller, join, tag):
        made = await join(entry(tag))
        got = await consent_states(client, controller, made["registrant_id"])
        assert got[("waitlist", "email")] == "granted" and got[("waitlist", "sms")] == "granted"
        r = await client.get(f"/v1/registrants/{made['registrant_id']}/consents", headers=controller.headers,
                             params={"history": "true"})
        sources = {(e["channel"], e["source"], e["given_by"]) for e in r.json()["history"]}
        assert sources == {("email", "staff", "self"), ("sms", "staff", "self")}

    async def test_a_child_needs_the_guardian_who_gives_the_consent(self, client, controller, join, tag):
        r = await client.post("/v1/waitlist", headers=controller.headers, json=entry(tag, age=9))
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "guardian"]
        guardian = {"given_name": "Hanna", "family_name": "Huoltaja", "email": f"hanna.{tag}@example.fi"}
        made = await join(entry(tag, age=9, guardian=guardian, email=None, phone=None, channels=["email"]))
        assert made["contact_holder"] == "guardian" and made["email"] == f"hanna.{tag}@example.fi"
        r = await client.get(f"/v1/registrants/{made['registrant_id']}/consents", headers=controller.headers,
                             params={"history": "true"})
        assert {(e["given_by"], e["evidence"]["guardian_id"]) for e in r.json()["history"]} == {
            ("guardian", made["guardian_id"])}
        assert (await join(entry(tag, age=13)))["guardian_id"] is None  # at the guardian age, on their own

    @pytest.mark.parametrize(("change", "loc"), [
        ({"channels": []}, ["body", "channels"]),
        ({"channels": ["fax"]}, ["body", "channels", 0]),
        ({"channels": ["sms"], "phone": None}, ["body", "phone"]),
        ({"channels": ["email"], "email": None}, ["body", "email"]),
        ({"interests": ["concerts"]}, ["body", "interests", 0]),
        ({"interests": []}, ["body", "interests"]),
        ({"age": 121}, ["body", "age"]),
        ({"age": -1}, ["body", "age"]),
        ({"age": None}, ["body", "date_of_birth"]),
        ({"age": None, "date_of_birth": "2999-01-01"}, ["body", "date_of_birth"]),
        ({"age": None, "date_of_birth": "1900-01-01"}, ["body", "date_of_birth"]),
        ({"age": 30, "guardian": {"given_name": "A", "family_name": "B", "email": "a@example.fi",
                                  "phone": "0401234567"}}, ["body", "guardian"]),
        ({"age": 9, "channels": ["sms"], "guardian": {"given_name": "A", "family_name": "B", "email": "a@example.fi"}},
         ["body", "guardian", "phone"]),
        ({"guardian_name": "Hanna"}, ["body", "guardian_name"]),
        ({"phone": "12"}, ["body", "phone"]),
        ({"email": "not-an-email"}, ["body", "email"]),
        ({"status": "active"}, ["body", "status"]),
    ])
    async def test_bad_input_names_the_field(self, client, controller, register_profile, tag, change, loc):
        r = await client.post("/v1/waitlist", headers=controller.headers, json=entry(tag, **change))
        assert r.status_code == 422, r.text
        assert loc in [e["loc"] for e in r.json()["errors"]]

    async def test_signups_per_client_are_capped(self, app, client, make_client, register_profile, tag):
        limits(app, waitlist_signups_per_client_per_minute=2)
        booking = await make_client("integration")
        for _ in range(2):
            assert (await client.post("/v1/waitlist", headers=booking.headers, json=entry(tag))).status_code == 201
        r = await client.post("/v1/waitlist", headers=booking.headers, json=entry(tag))
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 61
        other = await make_client("integration")
        assert (await client.post("/v1/waitlist", headers=other.headers, json=entry(tag))).status_code == 201


class TestUnsubscribe:
    async def test_join_token_leaves_once_and_withdraws(self, client, controller, join, tag):
        made = await join(entry(tag))
        assert made["unsubscribe_url"].endswith(f"/v1/waitlist/unsubscribe?token={made['unsubscribe_token']}")
        r = await client.post("/v1/waitlist/unsubscribe", json={"token": made["unsubscribe_token"]})
        assert r.status_code == 200 and r.json() == {"status": "left"}
        got = (await client.get(f"/v1/waitlist/{made['id']}", headers=controller.headers)).json()
        assert got["status"] == "left" and got["position"] is None
        states_now = await consent_states(client, controller, made["registrant_id"])
        assert states_now[("waitlist", "email")] == "withdrawn" and states_now[("waitlist", "sms")] == "withdrawn"
        used = await client.post("/v1/waitlist/unsubscribe", json={"token": made["unsubscribe_token"]})
        unknown = await client.post("/v1/waitlist/unsubscribe", json={"token": "A" * 43})
        assert used.status_code == unknown.status_code == 404
        assert used.json()["detail"] == unknown.json()["detail"]

    async def test_leaving_one_entry_keeps_the_consent_another_entry_uses(self, client, controller, join, tag):
        body = entry(tag)
        first = await join(body)
        await join({**body, "interests": ["enrolments"], "channels": ["email"]})
        await client.post("/v1/waitlist/unsubscribe", json={"token": first["unsubscribe_token"]})
        got = await consent_states(client, controller, first["registrant_id"])
        assert got[("waitlist", "email")] == "granted" and got[("waitlist", "sms")] == "withdrawn"

    async def test_the_link_opens_a_page_that_posts_the_one_click_form(self, client, controller, join, tag):
        made = await join(entry(tag))
        page = await client.get("/v1/waitlist/unsubscribe", params={"token": made["unsubscribe_token"]})
        assert page.status_code == 200 and 'method="post"' in page.text
        # Opening the link (or a scanner prefetching it) leaves nobody.
        got = (await client.get(f"/v1/waitlist/{made['id']}", headers=controller.headers)).json()
        assert got["status"] == "active"
        r = await client.post("/v1/waitlist/unsubscribe", params={"token": made["unsubscribe_token"]},
                              data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200

    async def test_missing_token_is_422(self, client, register_profile):
        assert (await client.post("/v1/waitlist/unsubscribe", json={})).status_code == 422
        assert (await client.post("/v1/waitlist/unsubscribe", json={"token": "short"})).status_code == 422


class TestNotifications:
    async def test_everyone_with_consent_in_fifo_order(self, app, client, controller, join, tag):
        made = [await join(entry(tag)) for _ in range(3)]
        await join(entry(tag, interests=["enrolments"]))
        r = await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["recipients"], body["wave_recipients"], body["deliveries"]) == (3, 3, 6)
        rows = await deliveries(app, body["id"])
        assert Counter(d.channel for d in rows) == {"email": 3, "sms": 3}
        assert {str(d.entry_id) for d in rows} == {m["id"] for m in made}

    async def test_waves_then_close(self, app, client, controller, join, tag):
        made = [await join(entry(tag, channels=["email"])) for _ in range(5)]
        first = (await client.post("/v1/waitlist/notifications", headers=controller.headers,
                                   json=notice(tag, mode="first_n", limit=2))).json()
        assert (first["wave_recipients"], first["waves"]) == (2, 1)
        url = f"/v1/waitlist/notifications/{first['id']}"
        second = (await client.post(url + "/next", headers=controller.headers)).json()
        third = (await client.post(url + "/next", headers=controller.headers)).json()
        assert (second["wave_recipients"], third["wave_recipients"], third["recipients"]) == (2, 1, 5)
        rows = await deliveries(app, first["id"])
        waves = [{str(d.entry_id) for d in rows if d.wave == n} for n in (1, 2, 3)]
        assert waves == [{m["id"] for m in made[:2]}, {m["id"] for m in made[2:4]}, {made[4]["id"]}]
        assert (await client.post(url + "/next", headers=controller.headers)).json()["wave_recipients"] == 0
        closed = await client.post(url + "/close", headers=controller.headers)
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        assert (await client.post(url + "/next", headers=controller.headers)).status_code == 409
        assert (await client.post(url + "/close", headers=controller.headers)).status_code == 409
        all_mode = (await client.post("/v1/waitlist/notifications", headers=controller.headers,
                                      json=notice(tag))).json()
        r = await client.post(f"/v1/waitlist/notifications/{all_mode['id']}/next", headers=controller.headers)
        assert r.status_code == 409
        assert (await client.post(f"/v1/waitlist/notifications/{uuid.uuid4()}/next",
                                  headers=controller.headers)).status_code == 404

    async def test_enrolled_entries_leave_and_are_not_notified(self, client, controller, join, tag):
        made = await join(entry(tag))
        r = await client.post(f"/v1/waitlist/{made['id']}/enrolled", headers=controller.headers)
        assert r.status_code == 200 and r.json()["status"] == "enrolled" and r.json()["position"] is None
        assert (await client.post(f"/v1/waitlist/{made['id']}/enrolled", headers=controller.headers)).status_code == 409
        got = await consent_states(client, controller, made["registrant_id"])
        assert got[("waitlist", "email")] == "withdrawn"
        body = (await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))).json()
        assert body["recipients"] == 0

    async def test_withdrawn_restricted_and_erased_are_never_picked(self, app, client, controller, join, tag):
        kept, withdrawn, restricted, erased = [await join(entry(tag)) for _ in range(4)]
        r = await client.post(f"/v1/registrants/{withdrawn['registrant_id']}/consents", headers=controller.headers,
                              json={"action": "withdraw", "purpose": "waitlist", "channel": "sms",
                                    "source": "phone"})
        assert r.status_code == 201, r.text
        await set_status(app, restricted["registrant_id"], "restricted")
        await set_status(app, erased["registrant_id"], "erased")
        body = (await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))).json()
        rows = await deliveries(app, body["id"])
        assert sorted((str(d.entry_id), d.channel) for d in rows) == sorted(
            [(kept["id"], "email"), (kept["id"], "sms"), (withdrawn["id"], "email")])

    async def test_notifications_per_client_are_capped(self, app, client, make_client, register_profile, tag):
        limits(app, waitlist_notifications_per_client_per_hour=2)
        booking = await make_client("integration")
        for _ in range(2):
            r = await client.post("/v1/waitlist/notifications", headers=booking.headers, json=notice(tag))
            assert r.status_code == 201
        r = await client.post("/v1/waitlist/notifications", headers=booking.headers, json=notice(tag))
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 3601

    async def test_sms_per_phone_per_hour(self, client, controller, join, tag):
        await join(entry(tag, channels=["sms"], email=None))
        sent = []
        for _ in range(4):
            body = (await client.post("/v1/waitlist/notifications", headers=controller.headers,
                                      json=notice(tag))).json()
            sent.append((body["deliveries"], body["skipped_sms_limit"]))
        assert sent == [(1, 0), (1, 0), (1, 0), (0, 1)]

    @pytest.mark.parametrize(("change", "loc"), [
        ({"message": ""}, ["body", "message"]),
        ({"message": "x" * 1001}, ["body", "message"]),
        ({"slot": {"starts_at": "2020-01-01T10:00:00+02:00", "description": "Laulutunti"}},
         ["body", "slot", "starts_at"]),
        ({"slot": {"starts_at": "2099-01-01T10:00:00", "description": "Laulutunti"}}, ["body", "slot", "starts_at"]),
        ({"interest": "concerts"}, ["body", "interest"]),
        ({"mode": "first_n"}, ["body", "limit"]),
        ({"limit": 3}, ["body", "limit"]),
        ({"mode": "first_n", "limit": 0}, ["body", "limit"]),
    ])
    async def test_bad_input_names_the_field(self, client, controller, register_profile, tag, change, loc):
        r = await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag, **change))
        assert r.status_code == 422, r.text
        assert loc in [e["loc"] for e in r.json()["errors"]]


class TestDelivery:
    @pytest.mark.commits
    async def test_exactly_once_with_two_workers_in_each_language(
        self, app, client, controller, join, tag, db, outbox_settings, smtp
    ):
        made = [await join(entry(tag, channels=["email"], phone=None, language=lang)) for lang in ("fi", "sv", "en")]
        made += [await join(entry(tag, channels=["email"], phone=None)) for _ in range(5)]
        body = (await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))).json()
        assert body["deliveries"] == 8
        await asyncio.gather(drain(db, outbox_settings), drain(db, outbox_settings))
        await drain(db, outbox_settings)
        assert Counter(str(m["To"]) for m in smtp.messages) == Counter(m["email"] for m in made)
        by_to = {str(m["To"]): m for m in smtp.messages}
        assert by_to[made[0]["email"]]["Subject"].startswith("Vapaa aika")
        assert by_to[made[1]["email"]]["Subject"].startswith("Ledig tid")
        assert by_to[made[2]["email"]]["Subject"].startswith("Free slot")
        rows = await deliveries(app, body["id"])
        assert {m.status for m in await messages(app, [d.id for d in rows])} == {"sent"}
        for message in smtp.messages:
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            link = str(message["List-Unsubscribe"]).strip("<>")
            assert link in message.get_content()
        # RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click` to the link, token in the query.
        link = str(by_to[made[3]["email"]]["List-Unsubscribe"]).strip("<>")
        token = parse_qs(urlsplit(link).query)["token"][0]
        r = await client.post("/v1/waitlist/unsubscribe", params={"token": token},
                              content="List-Unsubscribe=One-Click",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 200, r.text
        assert (await client.get(f"/v1/waitlist/{made[3]['id']}", headers=controller.headers)).json()["status"] == "left"
        again = await client.post("/v1/waitlist/unsubscribe", json={"token": token})
        assert again.status_code == 404

    @pytest.mark.commits
    async def test_a_killed_worker_process_loses_and_doubles_nothing(
        self, app, client, controller, join, tag, db, outbox_settings, smtp, clock
    ):
        made = [await join(entry(tag, channels=["email"], phone=None)) for _ in range(12)]
        body = (await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))).json()
        assert body["deliveries"] == 12
        # Withdrawn after queueing: the `rekisteri worker` process must run the waitlist's send check too.
        r = await client.post(f"/v1/registrants/{made[0]['registrant_id']}/consents", headers=controller.headers,
                              json={"action": "withdraw", "purpose": "waitlist", "channel": "email", "source": "phone"})
        assert r.status_code == 201
        smtp.hold_after = 4  # the fifth message waits in DATA: the worker is mid-batch
        proc = worker_process(outbox_settings, "--once", "--batch", "8", "--concurrency", "1")
        try:
            assert await asyncio.to_thread(smtp.holding.wait, 180), "the worker never got going"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            smtp.release.set()
        smtp.hold_after = None
        clock.advance(timedelta(seconds=301))  # the dead worker's lease runs out
        await drain(db, outbox_settings)
        assert Counter(str(m["To"]) for m in smtp.messages) == Counter(m["email"] for m in made[1:])
        statuses = Counter(m.status for m in await messages(app, [d.id for d in await deliveries(app, body["id"])]))
        assert statuses == {"sent": 11, "failed": 1}

    @pytest.mark.commits
    async def test_the_worker_command_runs_the_send_check(self, client, controller, join, tag, db, outbox_settings,
                                                          smtp):
        kept, withdrawn = [await join(entry(tag, channels=["email"], phone=None)) for _ in range(2)]
        await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))
        await client.post(f"/v1/registrants/{withdrawn['registrant_id']}/consents", headers=controller.headers,
                          json={"action": "withdraw", "purpose": "waitlist", "channel": "email", "source": "phone"})
        proc = worker_process(outbox_settings, "--once")
        out, _ = await asyncio.to_thread(proc.communicate, timeout=300)
        assert "sent 1," in out and "cancelled 1" in out, out
        assert [str(m["To"]) for m in smtp.messages] == [kept["email"]]

    @pytest.mark.commits
    async def test_sms_through_the_gateway(self, client, controller, join, tag, db, outbox_settings, receiver):
        made = await join(entry(tag, channels=["sms"], email=None, language="en"))
        from tests.outbox.conftest import SMS_TOKEN

        receiver.secrets["/sms"] = SMS_TOKEN
        await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))
        await drain(db, outbox_settings)
        [request] = receiver.requests
        assert request["signed"] and request["json"]["to"] == made["phone"]
        assert "Leave the list: http" in request["json"]["text"]

    @pytest.mark.commits
    async def test_retried_after_a_temporary_failure(self, app, client, controller, join, tag, db, outbox_settings,
                                                     smtp, clock):
        await join(entry(tag, channels=["email"], phone=None))
        body = (await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))).json()
        [delivery] = await deliveries(app, body["id"])
        smtp.reply = "451 4.3.0 try again later"
        stats = await drain(db, outbox_settings)
        assert stats.retried == 1
        [message] = await messages(app, [delivery.id])
        assert (message.status, message.attempts) == ("pending", 1)
        smtp.reply = None
        clock.advance(timedelta(hours=1))
        assert (await drain(db, outbox_settings)).sent == 1
        assert len(smtp.messages) == 1

    @pytest.mark.commits
    async def test_rechecked_at_send_time(self, app, client, controller, join, tag, db, outbox_settings, smtp):
        withdrawn, left, restricted, kept = [await join(entry(tag, channels=["email"], phone=None)) for _ in range(4)]
        body = (await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))).json()
        assert body["deliveries"] == 4
        r = await client.post(f"/v1/registrants/{withdrawn['registrant_id']}/consents", headers=controller.headers,
                              json={"action": "withdraw", "purpose": "waitlist", "channel": "email",
                                    "source": "phone"})
        assert r.status_code == 201
        await client.post("/v1/waitlist/unsubscribe", json={"token": left["unsubscribe_token"]})
        await set_status(app, restricted["registrant_id"], "restricted")
        stats = await drain(db, outbox_settings)
        assert (stats.sent, stats.cancelled) == (1, 3)
        assert [str(m["To"]) for m in smtp.messages] == [kept["email"]]
        failed = [m for m in await messages(app, [d.id for d in await deliveries(app, body["id"])])
                  if m.status == "failed"]
        assert all(m.last_error.startswith("cancelled:") for m in failed) and len(failed) == 3


class TestStats:
    @pytest.mark.commits
    async def test_counts_only(self, client, accounts, join, tag, db, outbox_settings, smtp):
        made = await join(entry(tag, interests=["enrolments"], channels=["email"], phone=None))
        viewer = accounts["viewer"]
        before = (await client.get("/v1/stats/waitlist", headers=viewer.headers)).json()
        await client.post("/v1/waitlist/notifications", headers=accounts["controller"].headers,
                          json=notice(tag, interest="enrolments"))
        await drain(db, outbox_settings)
        await client.post("/v1/waitlist/unsubscribe", json={"token": made["unsubscribe_token"]})
        after = (await client.get("/v1/stats/waitlist", headers=viewer.headers)).json()
        assert after["notices_sent_30d"] == before["notices_sent_30d"] + 1
        assert after["unsubscribes_total"] == before["unsubscribes_total"] + 1
        assert after["unsubscribes_30d"] == before["unsubscribes_30d"] + 1
        assert after["median_wait_days"] is not None
        assert {(c["interest"], c["channel"]) for c in after["by_interest_channel"]} == {
            ("cancellations", "email"), ("cancellations", "sms"), ("enrolments", "email"), ("enrolments", "sms")}
        assert "@" not in str(after)


class TestAudit:
    async def test_reads_writes_notices_and_unsubscribes_are_audited(self, app, client, controller, join, tag):
        made = await join(entry(tag))
        await client.get(f"/v1/waitlist/{made['id']}", headers=controller.headers)
        await client.get("/v1/waitlist", headers=controller.headers, params={"tag": tag})
        await client.post("/v1/waitlist/notifications", headers=controller.headers, json=notice(tag))
        await client.post("/v1/waitlist/unsubscribe", json={"token": made["unsubscribe_token"]})
        async with app.state.db.engine.connect() as conn:
            rid = uuid.UUID(made["registrant_id"])
            rows = await conn.execute(text(
                "SELECT e.action FROM audit_entry e JOIN audit_subject s ON s.entry_seq = e.seq "
                "WHERE s.registrant_id = :r"), {"r": rid.hex if conn.dialect.name == "sqlite" else rid})
            actions = {r.action for r in rows}
        assert {"waitlist.entry.create", "waitlist.entry.read", "waitlist.entry.list", "waitlist.notify",
                "waitlist.unsubscribe", "consent.grant", "consent.withdraw"} <= actions


class TestBrandFromTheProfile:
    def test_notice_texts_name_the_profiles_list_and_controller(self):
        from app.register.schemas import RegisterProfile
        from app.waitlist.texts import Brand, render
        from tests.conftest import combined_profile

        document = combined_profile()
        document["waitlist_name"] = {"fi": "Vapaat tunnit", "en": "Free lessons", "sv": "Lediga lektioner"}
        document["controller"]["name"] = "Laulukoulu Testi Oy"
        brand = Brand.of(RegisterProfile.model_validate(document), purpose="waitlist")
        notice = render(base_url="https://r.example", message="Vapaa tunti!", brand=brand, description="Laulu",
                        starts_at=datetime(2026, 12, 1, 10, tzinfo=UTC))
        for lang, name in document["waitlist_name"].items():
            text = notice.email[lang].before
            assert name in text and "Laulukoulu Testi Oy" in text and "UniikkiLista" not in text, lang
            assert notice.sms[lang].before.startswith("Laulukoulu Testi Oy: ")

    async def test_unsubscribe_page_names_the_controller(self, client, register_profile):
        page = await client.get("/v1/waitlist/unsubscribe", params={"token": "x" * 43})
        assert page.status_code == 200 and register_profile["controller"]["name"] in page.text

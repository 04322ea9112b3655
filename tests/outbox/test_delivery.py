"""Delivery end to end: a real SMTP server, a real SMS gateway and webhook receiver, retries, checks."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.outbox.headers import unsubscribe_headers
from app.core.config import Settings
from app.core.errors import Invalid
from app.db.session import Database
from app.outbox import service
from app.outbox.models import OutboxMessage
from app.outbox.worker import Worker, backoff_seconds
from tests.outbox.conftest import SMS_TOKEN, HttpSink, SmtpSink

# Workers: several sessions (and processes) at once, so real commits on a database of their own.
pytestmark = pytest.mark.commits

FINNISH = "Hei Äijänen! Peruutusaika vapautui: ke 14.00–14.45, laulutunti (Sörnäinen). Ilmoittaudu nopeasti."
UNSUBSCRIBE = {"List-Unsubscribe": "<https://laulukoulu.example/poistu?t=abc123>",
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def email_payload(to: str = "maija.meikalainen@example.fi", **extra: Any) -> dict[str, Any]:
    """An email payload with Finnish text and one-click unsubscribe headers."""
    return {"to": to, "subject": "Vapaa aika: laulutunti", "text": FINNISH, "headers": UNSUBSCRIBE, **extra}


async def enqueue(db: Database, count: int = 1, **kwargs: Any) -> list[uuid.UUID]:
    """Queue messages in one committed transaction; their ids."""
    async with db.sessionmaker() as session:
        kwargs.setdefault("kind", "email")
        kwargs.setdefault("payload", email_payload())
        made = [await service.enqueue(session, **kwargs) for _ in range(count)]
        await session.commit()
    return [m.id for m in made]


async def rows(db: Database, ids: list[uuid.UUID]) -> list[OutboxMessage]:
    """The current rows of some messages, in the order given."""
    async with db.sessionmaker() as session:
        found = {m.id: m for m in (await session.execute(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))).scalars()}
    return [found[i] for i in ids]


# This module's own send checks and key resolvers (an app keeps its own on app.state.wiring).
HOOKS = service.OutboxHooks()


async def drain(db: Database, settings: Settings, **kwargs: Any) -> Any:
    """One worker draining everything due."""
    kwargs.setdefault("hooks", HOOKS)
    worker = Worker(db, settings, **kwargs)
    try:
        return await worker.drain()
    finally:
        await worker.aclose()


class TestEnqueue:
    async def test_bad_payloads_name_the_field(self, db: Database) -> None:
        cases = [
            ("sms", {"to": "040 123 4567", "text": "x"}, ["payload", "to"]),
            ("sms", {"to": "+358401234567", "text": ""}, ["payload", "text"]),
            ("email", email_payload(subject="a\r\nBcc: x@example.com"), ["payload", "subject"]),
            ("email", email_payload(headers={"Bcc": "x@example.com"}), ["payload", "headers", "Bcc"]),
            ("email", email_payload(headers={"X-Note": "a\nb"}), ["payload", "headers", "X-Note"]),
            ("webhook", {"url": "https://example.com/", "body": {}, "signing_key_ref": "nokey"},
             ["payload", "signing_key_ref"]),
            ("webhook", {"url": "https://example.com/", "body": "x", "signing_key_ref": "client:1"}, ["payload", "body"]),
        ]
        async with db.sessionmaker() as session:
            for kind, payload, loc in cases:
                with pytest.raises(Invalid) as caught:
                    await service.enqueue(session, kind=kind, payload=payload)
                assert caught.value.errors[0]["loc"] == loc
            with pytest.raises(ValueError):
                await service.enqueue(session, kind="fax", payload={})

    async def test_nothing_is_sent_unless_the_callers_transaction_commits(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink
    ) -> None:
        async with db.sessionmaker() as session:
            message = await service.enqueue(session, kind="email", payload=email_payload(), ref_type="test.rollback")
            assert message.id is not None and message.status == "pending"
            await session.rollback()
        assert (await drain(db, outbox_settings)).claimed == 0
        assert smtp.messages == []


class TestEmail:
    async def test_sent_over_smtp_with_headers_and_finnish_text(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink
    ) -> None:
        ids = await enqueue(db, 3, ref_type="test.email", ref_id="slot-1")
        stats = await drain(db, outbox_settings)
        assert (stats.claimed, stats.sent) == (3, 3)
        assert len(smtp.messages) == 3
        received = smtp.messages[0]
        assert received["To"] == "maija.meikalainen@example.fi"
        assert received["From"] == "Laulukoulu <noreply@laulukoulu.example>"
        assert received["Subject"] == "Vapaa aika: laulutunti"
        assert received["List-Unsubscribe"] == UNSUBSCRIBE["List-Unsubscribe"]
        assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert received.get_content_charset() == "utf-8"
        assert received.get_content().strip() == FINNISH
        assert sorted(smtp.message_ids()) == sorted(f"<{i}@laulukoulu.example>" for i in ids)
        for row in await rows(db, ids):
            assert (row.status, row.attempts, row.claimed_by, row.last_error) == ("sent", 1, None, None)
            assert row.sent_at is not None

    async def test_one_click_headers_arrive_unfolded(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink
    ) -> None:
        # A real notice link: base URL, path and a 43-character token make a line longer than 78 columns.
        link = "https://laulukoulu.example/v1/waitlist/unsubscribe?token=" + "T" * 43
        payload = email_payload(headers=unsubscribe_headers(link))
        await enqueue(db, 1, ref_type="test.email", ref_id="slot-unfolded", payload=payload)
        stats = await drain(db, outbox_settings)
        assert stats.sent == 1
        raw = smtp.raw[0]
        assert f"\r\nList-Unsubscribe: <{link}>\r\n".encode() in raw  # one line, as written (RFC 2369)
        assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw  # RFC 8058

    async def test_refused_recipient_fails_permanently(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink
    ) -> None:
        smtp.reply = "550 5.1.1 mailbox unavailable"
        [message_id] = await enqueue(db)
        stats = await drain(db, outbox_settings)
        assert stats.failed == 1
        [row] = await rows(db, [message_id])
        assert (row.status, row.last_error) == ("failed", "SMTP error 550")

    async def test_console_backend_logs_without_personal_data(
        self, db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        console = settings.model_copy(update={"email_backend": None, "smtp_host": None, "sms_backend": None,
                                              "sms_gateway_url": None})
        ids = await enqueue(db, payload=email_payload(to="maija.meikalainen@example.fi"))
        ids += await enqueue(db, kind="sms", payload={"to": "+358401234567", "text": FINNISH})
        with caplog.at_level(logging.INFO, logger="rekisteri.outbox"):
            assert (await drain(db, console)).sent == 2
        logged = caplog.text
        assert "m***@example.fi" in logged and "+358*******67" in logged
        assert "maija" not in logged and "401234567" not in logged and "Äijänen" not in logged
        assert [r.status for r in await rows(db, ids)] == ["sent", "sent"]


class TestRetries:
    async def test_backoff_doubles_and_gives_up_after_max_attempts(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink, clock: Any
    ) -> None:
        clock.freeze(clock.utcnow())
        smtp.reply = "451 4.3.0 try again later"
        [message_id] = await enqueue(db, max_attempts=3)
        for attempt, base in ((1, 30), (2, 60)):
            assert (await drain(db, outbox_settings)).retried == 1
            [row] = await rows(db, [message_id])
            assert (row.status, row.attempts, row.last_error) == ("pending", attempt, "SMTP error 451")
            delay = (row.next_attempt_at - clock.utcnow()).total_seconds()
            assert base * 0.8 - 0.01 <= delay <= base * 1.2 + 0.01
            assert (await drain(db, outbox_settings)).claimed == 0  # not due yet
            clock.advance(timedelta(seconds=delay + 1))
        assert (await drain(db, outbox_settings)).failed == 1
        [row] = await rows(db, [message_id])
        assert (row.status, row.attempts, row.last_error, row.sent_at) == ("failed", 3, "SMTP error 451", None)
        assert smtp.messages == []

    async def test_a_retry_succeeds(self, db: Database, outbox_settings: Settings, smtp: SmtpSink, clock: Any) -> None:
        smtp.reply = "421 4.7.0 busy"
        [message_id] = await enqueue(db)
        assert (await drain(db, outbox_settings)).retried == 1
        smtp.reply = None
        clock.advance(timedelta(hours=1))
        assert (await drain(db, outbox_settings)).sent == 1
        [row] = await rows(db, [message_id])
        assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
        assert len(smtp.messages) == 1

    async def test_unreachable_server_is_retried(self, db: Database, outbox_settings: Settings) -> None:
        from tests.outbox.conftest import free_port  # noqa: PLC0415

        nowhere = outbox_settings.model_copy(update={"smtp_port": free_port()})
        [message_id] = await enqueue(db)
        assert (await drain(db, nowhere)).retried == 1
        [row] = await rows(db, [message_id])
        assert row.status == "pending" and row.last_error.startswith("SMTP connection failed")

    def test_backoff_is_capped_and_jittered(self) -> None:
        delays = [backoff_seconds(n, base=10, cap=100) for n in (1, 2, 3, 4, 5, 20)]
        assert 8 <= delays[0] <= 12 and 16 <= delays[1] <= 24 and 32 <= delays[2] <= 48
        assert all(d <= 100 for d in delays) and delays[-1] >= 80


class TestSendChecks:
    async def test_a_check_cancels_at_send_time(
        self, db: Database, outbox_settings: Settings, smtp: SmtpSink
    ) -> None:
        withdrawn: set[str] = set()

        async def consent_still_given(session: Any, message: OutboxMessage) -> str | None:
            return "consent withdrawn" if message.ref_id in withdrawn else None

        HOOKS.add_send_check("test.consent", consent_still_given)
        keep = await enqueue(db, ref_type="test.consent", ref_id="keep")
        drop = await enqueue(db, ref_type="test.consent", ref_id="drop")
        withdrawn.add("drop")  # after queueing, before sending
        stats = await drain(db, outbox_settings)
        assert (stats.sent, stats.cancelled) == (1, 1)
        [kept], [dropped] = await rows(db, keep), await rows(db, drop)
        assert kept.status == "sent"
        assert (dropped.status, dropped.last_error, dropped.sent_at) == ("failed", "cancelled: consent withdrawn", None)
        assert smtp.message_ids() == [f"<{keep[0]}@laulukoulu.example>"]

    async def test_a_broken_check_retries_instead_of_losing(self, db: Database, outbox_settings: Settings) -> None:
        async def broken(session: Any, message: OutboxMessage) -> str | None:
            raise RuntimeError("registrant service down")

        HOOKS.add_send_check("test.broken", broken)
        [message_id] = await enqueue(db, ref_type="test.broken")
        assert (await drain(db, outbox_settings)).retried == 1
        [row] = await rows(db, [message_id])
        assert (row.status, row.last_error) == ("pending", "send check failed (RuntimeError)")


class TestSms:
    async def test_signed_request_to_the_gateway(
        self, db: Database, outbox_settings: Settings, receiver: HttpSink
    ) -> None:
        receiver.secrets["/sms"] = SMS_TOKEN
        [message_id] = await enqueue(db, kind="sms", payload={"to": "+358401234567", "text": FINNISH})
        assert (await drain(db, outbox_settings)).sent == 1
        [request] = receiver.requests
        assert request["signed"] and request["json"] == {"to": "+358401234567", "text": FINNISH}
        assert request["headers"]["Authorization"] == f"Bearer {SMS_TOKEN}"
        assert request["headers"]["X-Rekisteri-Delivery"] == str(message_id)

    async def test_5xx_is_retried_and_4xx_fails(
        self, db: Database, outbox_settings: Settings, receiver: HttpSink, clock: Any
    ) -> None:
        receiver.secrets["/sms"] = SMS_TOKEN
        receiver.statuses += [503, 400]
        [message_id] = await enqueue(db, kind="sms", payload={"to": "+358401234567", "text": "x"})
        assert (await drain(db, outbox_settings)).retried == 1
        [row] = await rows(db, [message_id])
        assert (row.status, row.last_error) == ("pending", "SMS gateway answered HTTP 503")
        clock.advance(timedelta(hours=1))
        assert (await drain(db, outbox_settings)).failed == 1
        [row] = await rows(db, [message_id])
        assert (row.status, row.attempts, row.last_error) == ("failed", 2, "SMS gateway answered HTTP 400")


class TestWebhook:
    @pytest.fixture(autouse=True)
    def secrets(self) -> dict[str, str]:
        """Webhook secrets by client id, resolved through a registered resolver as features will."""
        known: dict[str, str] = {}

        async def resolve(session: Any, ref: str) -> str | None:
            return known.get(ref)

        HOOKS.add_key_resolver("testclient", resolve)
        return known

    def payload(self, port: int, path: str, client: str, host: str = "127.0.0.1") -> dict[str, Any]:
        """A webhook payload for the local receiver."""
        return {"url": f"http://{host}:{port}{path}", "body": {"event": "request.completed", "nimi": "Äänekoski"},
                "signing_key_ref": f"testclient:{client}"}

    async def test_signed_and_acknowledged(self, db: Database, outbox_settings: Settings, receiver: HttpSink,
                                           http_server: Any, secrets: dict[str, str]) -> None:
        secrets["c1"] = "webhook-secret-" + "w" * 20
        receiver.secrets["/hook"] = secrets["c1"]
        [message_id] = await enqueue(db, kind="webhook", payload=self.payload(http_server[1], "/hook", "c1", "localhost"))
        assert (await drain(db, outbox_settings)).sent == 1
        [request] = receiver.requests
        assert request["signed"] and request["json"]["nimi"] == "Äänekoski"
        assert request["headers"]["Host"] == f"localhost:{http_server[1]}"
        assert request["headers"]["X-Rekisteri-Delivery"] == str(message_id)

    async def test_unacknowledged_is_retried_until_2xx(self, db: Database, outbox_settings: Settings,
                                                       receiver: HttpSink, http_server: Any,
                                                       secrets: dict[str, str], clock: Any) -> None:
        secrets["c2"] = "another-secret-" + "w" * 20
        receiver.secrets["/hook"] = secrets["c2"]
        receiver.statuses += [404]
        [message_id] = await enqueue(db, kind="webhook", payload=self.payload(http_server[1], "/hook", "c2"))
        assert (await drain(db, outbox_settings)).retried == 1
        clock.advance(timedelta(hours=1))
        assert (await drain(db, outbox_settings)).sent == 1
        assert [r["signed"] for r in receiver.requests] == [True, True]

    async def test_unknown_key_and_refused_url_fail(self, db: Database, outbox_settings: Settings,
                                                    receiver: HttpSink, http_server: Any,
                                                    secrets: dict[str, str]) -> None:
        secrets["c3"] = "third-secret-" + "w" * 20
        unknown = await enqueue(db, kind="webhook", payload=self.payload(http_server[1], "/hook", "nobody"))
        refused = await enqueue(db, kind="webhook", payload=self.payload(http_server[1], "/hook", "c3"))
        strict = outbox_settings.model_copy(update={"callback_allowlist": []})
        assert (await drain(db, strict)).failed == 2
        [u], [r] = await rows(db, unknown), await rows(db, refused)
        assert u.last_error == "signing key not found"
        assert r.last_error == "callback URL refused: only https is allowed"
        assert receiver.requests == []

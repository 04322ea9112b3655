"""Real receivers for the outbox tests: an aiosmtpd SMTP server and an HTTP server that checks signatures."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr
from aiosmtpd.controller import Controller
from sqlalchemy import delete

from app.core.config import Settings
from app.core.security import verify_body_signature
from app.db.session import Database
from app.outbox.models import OutboxMessage

SMS_TOKEN = "sms-gateway-token-" + "t" * 20


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpSink:
    """What the SMTP server accepted, and a gate that holds the next message until released."""

    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # as received, to check how headers were written
    reply: str | None = None  # e.g. "451 try later": refuse instead of accepting
    hold_after: int | None = None  # hold the message after this many were accepted
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        """Accept (and keep) a message, refuse it, or hold it."""
        if self.hold_after is not None and len(self.messages) >= self.hold_after:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            return "451 4.3.0 held by the test"
        if self.reply:
            return self.reply
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            self.raw.append(envelope.original_content or envelope.content)
        return "250 OK"

    def reset(self) -> None:
        """Forget everything for the next test."""
        self.messages.clear()
        self.raw.clear()
        self.reply, self.hold_after = None, None
        self.holding.clear()
        self.release.clear()

    def message_ids(self) -> list[str]:
        """The Message-ID of every accepted message."""
        return [str(m["Message-ID"]) for m in self.messages]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[SmtpSink, int]]:
    """A real SMTP server (aiosmtpd) on a free port, for the whole run."""
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    sink.release.set()
    controller.stop()


@pytest.fixture
def smtp(smtp_server: tuple[SmtpSink, int]) -> Iterator[SmtpSink]:
    """The SMTP server's sink, emptied for this test."""
    smtp_server[0].reset()
    yield smtp_server[0]
    smtp_server[0].release.set()


@dataclass
class HttpSink:
    """Requests the HTTP receiver got, the secret each path's signature is checked with, and queued answers."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)

    def reset(self) -> None:
        """Forget everything for the next test."""
        self.requests.clear()
        self.secrets.clear()
        self.statuses.clear()


def _handler(sink: HttpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            secret = sink.secrets.get(self.path)
            signed = secret is not None and verify_body_signature(secret, body, self.headers.get("X-Rekisteri-Signature"))
            sink.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body),
                                  "signed": signed})
            status = sink.statuses.pop(0) if sink.statuses else (200 if signed else 401)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def http_server() -> Iterator[tuple[HttpSink, int]]:
    """A real local HTTP server (SMS gateway and webhook receiver) that verifies signatures."""
    sink = HttpSink()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(sink))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sink, server.server_address[1]
    server.shutdown()


@pytest.fixture
def receiver(http_server: tuple[HttpSink, int]) -> HttpSink:
    """The HTTP receiver, emptied for this test."""
    http_server[0].reset()
    return http_server[0]


@pytest.fixture
def outbox_settings(settings: Settings, smtp_server: tuple[SmtpSink, int], http_server: tuple[HttpSink, int]) -> Settings:
    """Settings that deliver to the test's real SMTP server and HTTP receiver."""
    return settings.model_copy(update={
        "email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": smtp_server[1], "smtp_starttls": False,
        "smtp_from": "Laulukoulu <noreply@laulukoulu.example>",
        "sms_backend": "http", "sms_gateway_url": f"http://127.0.0.1:{http_server[1]}/sms",
        "sms_gateway_token": SecretStr(SMS_TOKEN), "callback_allowlist": ["127.0.0.1", "localhost"],
        "outbox_backoff_base_seconds": 30.0, "outbox_backoff_max_seconds": 3600.0, "http_timeout_seconds": 2.0,
    })


@pytest.fixture
async def db(app: Any) -> AsyncIterator[Database]:
    """The app's database, with the outbox emptied so a worker sees only this test's messages."""
    database: Database = app.state.db
    async with database.sessionmaker() as session:
        await session.execute(delete(OutboxMessage))
        await session.commit()
    yield database

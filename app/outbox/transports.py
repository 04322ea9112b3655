"""How messages leave: SMTP email, an HTTP SMS gateway, signed webhooks, and console stand-ins."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol

import aiosmtplib
import httpx

from app.core import clock
from app.core.config import ConfigError, Settings
from app.core.security import sign_body
from app.outbox.headers import UNFOLDED, email_bytes, header_value
from app.outbox.models import Kind
from app.outbox.urls import UnsafeCallbackUrl, check_callback_url

log = logging.getLogger("rekisteri.outbox")
SIGNATURE_HEADER = "X-Rekisteri-Signature"
DELIVERY_HEADER = "X-Rekisteri-Delivery"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as a transport sees it (the webhook secret resolved just before sending)."""

    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    secret: str | None = None


class DeliveryError(Exception):
    """A send that did not go through; `reason` is kept on the row, so it never names a person."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent


class Transport(Protocol):
    """Sends one kind of message; raises DeliveryError when it could not."""

    async def send(self, delivery: Delivery) -> None:
        """Deliver one message, or raise DeliveryError."""

    async def idle(self) -> None:
        """Let go of open connections while there is nothing to send."""


def mask_email(address: str) -> str:
    """`m***@example.fi`: enough to tell messages apart in a log, not enough to name anyone."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(number: str) -> str:
    """`+358******67`."""
    return number[:4] + "*" * max(len(number) - 6, 0) + number[-2:] if len(number) > 6 else "***"


def body_bytes(body: Any) -> bytes:
    """The exact bytes that are signed and sent (compact UTF-8 JSON)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _http_error(status: int, what: str, *, retry_4xx: bool) -> DeliveryError:
    """Map a non-2xx answer: 408, 429 and 5xx are worth retrying; other 4xx are final unless told otherwise."""
    transient = status >= 500 or status in (408, 425, 429) or retry_4xx
    return DeliveryError(f"{what} answered HTTP {status}", permanent=not transient)


def build_email(settings: Settings, delivery: Delivery) -> EmailMessage:
    """The MIME message of an email payload (UTF-8 text, optional HTML alternative, extra headers)."""
    payload = delivery.payload
    message = EmailMessage(policy=UNFOLDED)
    message["From"] = settings.smtp_from
    message["To"] = header_value(payload["to"])
    # A line break in a subject or header would make every retry fail: it is written as a space instead.
    message["Subject"] = header_value(payload["subject"])
    message["Date"] = format_datetime(clock.utcnow())
    # The same id on every retry, so a receiving system can drop a duplicate.
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "rekisteri"
    message["Message-ID"] = f"<{delivery.id}@{domain}>"
    for name, value in (payload.get("headers") or {}).items():
        message[name] = header_value(value)
    message.set_content(payload["text"])
    if payload.get("html"):
        message.add_alternative(payload["html"], subtype="html")
    return message


async def _send(smtp: aiosmtplib.SMTP, message: EmailMessage) -> None:
    """Send the message serialised by us (aiosmtplib's own flattening would fold headers at 78 columns)."""
    sender, recipient = parseaddr(str(message["From"]))[1], str(message["To"])
    if not (sender + recipient).isascii():
        await smtp.send_message(message)  # SMTPUTF8 addresses: aiosmtplib negotiates the extension
        return
    await smtp.sendmail(sender, [recipient], email_bytes(message))


@dataclass
class SmtpTransport:
    """Email over SMTP, with a small pool of connections kept open while there is work."""

    settings: Settings
    size: int
    _idle: list[aiosmtplib.SMTP] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None

    async def send(self, delivery: Delivery) -> None:
        """Send over a pooled connection; a connection that failed is dropped, never reused."""
        message = build_email(self.settings, delivery)
        self._slots = self._slots or asyncio.Semaphore(self.size)
        async with self._slots:
            smtp = await self._connection()
            try:
                await _send(smtp, message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._idle.append(smtp)
                codes = sorted({r.code for r in exc.recipients})
                raise DeliveryError(f"SMTP recipient refused ({codes[0]})", permanent=codes[0] >= 500) from exc
            except aiosmtplib.SMTPResponseException as exc:
                await _quietly_close(smtp)
                raise DeliveryError(f"SMTP error {exc.code}", permanent=exc.code >= 500) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await _quietly_close(smtp)
                raise DeliveryError(f"SMTP connection failed ({type(exc).__name__})") from exc
            self._idle.append(smtp)

    async def _connection(self) -> aiosmtplib.SMTP:
        while self._idle:
            smtp = self._idle.pop()
            if smtp.is_connected:
                return smtp
        settings = self.settings
        smtp = aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port,
                               start_tls=settings.smtp_starttls, timeout=settings.smtp_timeout_seconds,
                               tls_context=ssl.create_default_context() if settings.smtp_starttls else None)
        try:
            await smtp.connect()
            if settings.smtp_user:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                await smtp.login(settings.smtp_user, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _quietly_close(smtp)
            raise DeliveryError(f"SMTP login refused ({exc.code})") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _quietly_close(smtp)
            raise DeliveryError(f"SMTP connection failed ({type(exc).__name__})") from exc
        return smtp

    async def idle(self) -> None:
        """Say QUIT on every pooled connection."""
        idle, self._idle = self._idle, []
        for smtp in idle:
            await _quietly_close(smtp)


async def _quietly_close(smtp: aiosmtplib.SMTP) -> None:
    """Close a connection that may already be gone."""
    try:
        if smtp.is_connected:
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        smtp.close()


@dataclass
class HttpSmsTransport:
    """SMS through an HTTP gateway: JSON {to, text}, bearer token, body signed with HMAC-SHA256."""

    settings: Settings
    http: httpx.AsyncClient

    async def send(self, delivery: Delivery) -> None:
        """POST one text message to the gateway."""
        token = self.settings.sms_gateway_token.get_secret_value() if self.settings.sms_gateway_token else ""
        body = body_bytes({"to": delivery.payload["to"], "text": delivery.payload["text"]})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                   SIGNATURE_HEADER: sign_body(token, body), DELIVERY_HEADER: str(delivery.id),
                   "Idempotency-Key": str(delivery.id)}
        await _post(self.http, self.settings.sms_gateway_url or "", body=body, headers=headers, what="SMS gateway",
                    retry_4xx=False)

    async def idle(self) -> None:
        """Nothing to let go: httpx closes idle connections itself."""


async def _post(http: httpx.AsyncClient, url: str, *, body: bytes, headers: dict[str, str], what: str,
                retry_4xx: bool, extensions: dict[str, Any] | None = None) -> None:
    """POST a signed body; an unreachable receiver or a non-2xx answer becomes a DeliveryError."""
    try:
        response = await http.post(url, content=body, headers=headers, extensions=extensions or {})
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what} unreachable ({type(exc).__name__})") from exc
    if not response.is_success:
        raise _http_error(response.status_code, what, retry_4xx=retry_4xx)


@dataclass
class WebhookTransport:
    """Signed JSON POSTs to callback URLs, checked against the SSRF rules again at send time."""

    settings: Settings
    http: httpx.AsyncClient

    async def send(self, delivery: Delivery) -> None:
        """POST the body to its URL at the address just checked; any 2xx acknowledges it."""
        if not delivery.secret:
            raise DeliveryError("signing key not found", permanent=True)
        try:
            checked = await check_callback_url(delivery.payload["url"], allowlist=self.settings.callback_allowlist)
        except UnsafeCallbackUrl as exc:
            raise DeliveryError(exc.detail, permanent=True) from exc
        url, host = checked.pinned()
        body = body_bytes(delivery.payload["body"])
        headers = {"Content-Type": "application/json", "Host": host, SIGNATURE_HEADER: sign_body(delivery.secret, body),
                   DELIVERY_HEADER: str(delivery.id)}
        # The TLS name stays the real host while we connect to the checked address.
        extensions = {"sni_hostname": checked.host} if checked.scheme == "https" else {}
        # Recipients must be told (GDPR Art. 19): a 4xx is retried too, until max_attempts.
        await _post(self.http, url, body=body, headers=headers, what="callback", retry_4xx=True, extensions=extensions)

    async def idle(self) -> None:
        """Nothing to let go."""


@dataclass
class ConsoleTransport:
    """The embedded default: log that a message would have gone, with the recipient masked."""

    kind: str

    async def send(self, delivery: Delivery) -> None:
        """Log one line without personal data."""
        to = delivery.payload.get("to") or delivery.payload.get("url", "")
        masked = mask_email(to) if self.kind == Kind.email else mask_phone(to) if self.kind == Kind.sms else "callback"
        log.info("outbox %s %s to %s (console backend, not sent)", self.kind, delivery.id, masked)

    async def idle(self) -> None:
        """Nothing to let go."""


@dataclass
class Transports:
    """The transport of each kind, as the settings choose them, sharing one HTTP client."""

    by_kind: dict[str, Transport]
    http: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, concurrency: int) -> Transports:
        """Build the configured transports."""
        http = httpx.AsyncClient(timeout=settings.http_timeout_seconds, follow_redirects=False,
                                 limits=httpx.Limits(max_connections=concurrency * 2))
        email: Transport = ConsoleTransport(Kind.email)
        if settings.email_backend_name == "smtp":
            if not settings.smtp_host:
                raise ConfigError("REKISTERI_EMAIL_BACKEND=smtp needs REKISTERI_SMTP_HOST")
            email = SmtpTransport(settings, size=concurrency)
        sms: Transport = ConsoleTransport(Kind.sms)
        if settings.sms_backend_name == "http":
            if not (settings.sms_gateway_url and settings.sms_gateway_token):
                raise ConfigError("REKISTERI_SMS_BACKEND=http needs REKISTERI_SMS_GATEWAY_URL and _TOKEN")
            sms = HttpSmsTransport(settings, http)
        webhook = WebhookTransport(settings, http)
        return cls({Kind.email: email, Kind.sms: sms, Kind.webhook: webhook}, http)

    async def send(self, delivery: Delivery) -> None:
        """Hand a message to the transport of its kind."""
        await self.by_kind[delivery.kind].send(delivery)

    async def idle(self) -> None:
        """Let go of open connections."""
        for transport in self.by_kind.values():
            await transport.idle()

    async def aclose(self) -> None:
        """Close everything for good."""
        await self.idle()
        if self.http is not None:
            await self.http.aclose()

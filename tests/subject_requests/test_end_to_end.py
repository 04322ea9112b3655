"""A request by email, confirmed by the person through a real SMTP message (aiosmtpd), answered and read."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from app.core import clock as service_clock
from tests.subject_requests.conftest import drain

# The outbox worker reads what the request committed, on connections of its own.
pytestmark = pytest.mark.commits

LINK = re.compile(r"https?://\S+/v1/requests/confirmations/(\S+)")


def link_in(message) -> str:
    """The path of the confirmation link in a received email."""
    match = LINK.search(message.get_content())
    assert match, message.get_content()
    return urlsplit(match.group(0)).path


class TestConfirmationLink:
    async def test_file_by_email_confirm_through_smtp_and_complete(self, client, me, db, outbox_settings, smtp,
                                                                   registrant, file, act):
        person = await registrant(given_name="Aino", language="fi")
        email = (await client.get(f"/v1/registrants/{person}", headers=me.headers)).json()["email"]
        made = await file(channel="email", requester={"name": "Aino Meikäläinen", "email": email})
        assert made["status"] == "received" and made["flags"] == []
        sent = await act(made["id"], "send_confirmation", to="email", registrant_id=person)
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "received" and sent.json()["registrant_id"] == person

        await drain(db, outbox_settings)
        [message] = smtp.messages
        assert message["To"] == email and message["Subject"] == "Vahvista tietosuojapyyntösi"
        path = link_in(message)

        page = await client.get(path)  # a link scanner's GET changes nothing
        assert page.status_code == 200 and "<form method=\"post\"" in page.text
        assert (await client.get(f"/v1/requests/{made['id']}", headers=me.headers)).json()["status"] == "received"

        confirmed = await client.post(path)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json() == {"confirmed": True, "request_id": made["id"], "status": "verified"}
        detail = (await client.get(f"/v1/requests/{made['id']}", headers=me.headers)).json()
        verification = detail["verification"]
        assert verification["method"] == "known_contact" and verification["by"] == f"registrant:{person}"
        assert verification["evidence"]["channel"] == "email" and verification["evidence"]["sent_to"] == "m***@example.com"
        assert [e["action"] for e in detail["events"]] == ["file", "send_confirmation", "confirm"]
        log = await client.get("/v1/audit", headers=me.headers, params={"registrant": person, "limit": 100})
        assert "request.confirm" in {e["action"] for e in log.json()["items"]}

        again = await client.post(path)
        unknown = await client.post("/v1/requests/confirmations/" + "x" * 43)
        assert again.status_code == unknown.status_code == 404
        assert again.json()["detail"] == unknown.json()["detail"]

        assert (await act(made["id"], "start")).status_code == 200
        done = await act(made["id"], "complete")
        assert done.status_code == 200 and done.json()["status"] == "completed", done.text
        letter = await client.get(f"/v1/requests/{made['id']}/export", headers=me.headers,
                                  params={"format": "html", "lang": "fi"})
        assert letter.status_code == 200 and "Aino" in letter.text

    async def test_an_expired_link_is_the_same_404(self, client, me, db, outbox_settings, smtp, registrant, file, act):
        person = await registrant()
        made = await file(registrant_id=person)
        assert (await act(made["id"], "send_confirmation", to="email")).status_code == 200
        await drain(db, outbox_settings)
        path = link_in(smtp.messages[-1])
        service_clock.advance(timedelta(hours=73))
        try:
            r = await client.post(path)
        finally:
            service_clock.reset()
        assert r.status_code == 404 and "no such confirmation link" in r.json()["detail"]

    async def test_only_to_a_contact_already_in_the_register(self, client, me, registrant, file, act):
        made = await file()
        r = await act(made["id"], "send_confirmation", to="email")
        assert r.status_code == 409 and "link the registrant" in r.json()["detail"]
        person = await registrant(phone=None)
        r = await act(made["id"], "send_confirmation", to="phone", registrant_id=person)
        assert r.status_code == 409 and "no phone" in r.json()["detail"]
        r = await act(made["id"], "send_confirmation", to="carrier_pigeon")
        assert r.status_code == 422

    async def test_a_text_message_for_a_phone_in_the_register(self, client, me, db, registrant, file, act):
        person = await registrant(language="sv")
        made = await file(registrant_id=person)
        r = await act(made["id"], "send_confirmation", to="phone")
        assert r.status_code == 200, r.text
        detail = (await client.get(f"/v1/requests/{made['id']}", headers=me.headers)).json()
        sent = detail["events"][-1]["details"]
        assert sent["to"] == "phone" and sent["sent_to"].startswith("+358") and "*" in sent["sent_to"]

"""Signed status callbacks to a real local HTTP receiver; GET /v1/stats/requests and `rekisteri requests due`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.outbox.worker import Worker
from app.subject_requests.deadlines import add_months
from tests.subject_requests.conftest import drain

CLI = str(Path(sys.executable).with_name("rekisteri"))


class TestCallbacks:
    @pytest.mark.commits
    async def test_each_status_change_is_posted_signed_and_retried(self, db, outbox_settings, receiver, http_server,
                                                                   allow_local_callbacks, file, registrant, act,
                                                                   clock):
        person = await registrant()
        path = "/dsr/status"
        made = await file(registrant_id=person, status_callback_url=f"http://127.0.0.1:{http_server[1]}{path}")
        receiver.secrets[path] = made["callback_secret"]
        receiver.statuses.append(503)  # the first delivery fails and is retried with backoff
        assert (await act(made["id"], "link", registrant_id=person)).status_code == 200  # no status change
        for action, fields in (("verify", {"method": "in_person", "document_type": "passport"}), ("start", {}), ("complete", {})):
            assert (await act(made["id"], action, **fields)).status_code == 200
        await drain(db, outbox_settings)
        assert len(receiver.requests) == 3
        clock.advance(timedelta(hours=2))
        await drain(db, outbox_settings)
        delivered = receiver.requests
        assert len(delivered) == 4 and all(r["signed"] for r in delivered)
        assert sorted({r["json"]["status"] for r in delivered}) == ["completed", "in_progress", "verified"]
        assert all(r["headers"]["X-Rekisteri-Signature"].startswith("sha256=") for r in receiver.requests)
        event = next(r["json"] for r in delivered if r["json"]["status"] == "completed")
        assert event["request_id"] == made["id"] and event["previous_status"] == "in_progress"
        assert event["package_available"] is True and event["event"] == "request.status_changed"

    @pytest.mark.commits
    async def test_another_secret_does_not_verify(self, db, outbox_settings, receiver, http_server,
                                                  allow_local_callbacks, file, act):
        path = "/dsr/other"
        made = await file(status_callback_url=f"http://127.0.0.1:{http_server[1]}{path}")
        receiver.secrets[path] = "not-the-secret"
        receiver.statuses.append(200)
        await act(made["id"], "withdraw")
        await drain(db, outbox_settings)
        assert [r["signed"] for r in receiver.requests] == [False]


class TestStats:
    async def test_auth(self, client, accounts):
        assert (await client.get("/v1/stats/requests")).status_code == 401
        for role in ("integration", "automation"):
            assert (await client.get("/v1/stats/requests", headers=accounts[role].headers)).status_code == 403
        for role in ("viewer", "auditor", "staff", "controller"):
            assert (await client.get("/v1/stats/requests", headers=accounts[role].headers)).status_code == 200

    async def test_figures(self, client, accounts, file, registrant, act, advance):
        viewer = accounts["viewer"]
        before = (await client.get("/v1/stats/requests", headers=viewer.headers)).json()
        now = datetime.now(UTC)
        await file(received_at=(now - timedelta(days=40)).isoformat())
        soon = add_months(now + timedelta(days=3), -1)
        await file("erasure", received_at=soon.isoformat())
        extended = await file()
        assert (await act(extended["id"], "extend", reason="a big one", person_informed=True)).status_code == 200
        person = await registrant()
        done = await file(registrant_id=person)
        await advance(done["id"], person)
        after = (await client.get("/v1/stats/requests", headers=viewer.headers)).json()
        assert after["open_total"] - before["open_total"] == 3
        assert after["overdue"] - before["overdue"] == 1
        assert after["due_within"] - before["due_within"] == 1 and after["due_within_days"] == 7
        assert after["extensions_used"] - before["extensions_used"] == 1
        assert after["completed_90d"] - before["completed_90d"] == 1
        assert after["open_by_type"].get("erasure", 0) - before["open_by_type"].get("erasure", 0) == 1
        assert after["median_days_to_complete_90d"] is not None
        assert not any("@" in json.dumps(v) for v in after.values())

    @pytest.mark.commits
    def test_cli_prints_the_same_figures(self, database_url, client):
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("REKISTERI_")},
               "REKISTERI_DATABASE_URL": database_url, "REKISTERI_JWT_SECRET": "x" * 48}
        done = subprocess.run([CLI, "requests", "due", "--within", "7d"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        figures = json.loads(done.stdout)
        assert figures["due_within_days"] == 7 and {"overdue", "open_by_type", "open_by_status",
                                                    "median_days_to_complete_90d", "extensions_used"} <= set(figures)
        bad = subprocess.run([CLI, "requests", "due", "--within", "soon"], env=env, capture_output=True, text=True,
                             timeout=60)
        assert bad.returncode == 2 and "number of days" in bad.stderr

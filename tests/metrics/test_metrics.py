"""GET /metrics: Prometheus text, behind `metrics:read`, with request counters by route template and database gauges."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

GAUGES = {"rekisteri_outbox_queue_depth", "rekisteri_outbox_oldest_age_seconds", "rekisteri_outbox_failed_messages",
          "rekisteri_requests_open", "rekisteri_requests_due_within_7d", "rekisteri_requests_overdue",
          "rekisteri_audit_chain_length", "rekisteri_audit_unsealed_entries", "rekisteri_audit_sealing_lag_seconds",
          "rekisteri_db_pool_in_use"}


def _samples(body: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


class TestMetrics:
    async def test_auth_matrix(self, client, accounts, make_client):
        assert (await client.get("/metrics")).status_code == 401
        for role in ("staff", "integration", "automation"):
            assert (await client.get("/metrics", headers=accounts[role].headers)).status_code == 403, role
        for account in (accounts["controller"], accounts["auditor"], accounts["viewer"], await make_client("viewer")):
            assert (await client.get("/metrics", headers=account.headers)).status_code == 200

    async def test_requests_are_counted_by_route_template_and_status(self, client, accounts):
        viewer = accounts["viewer"]
        await client.get("/v1/registrants/9b2f6c1e-0000-4000-8000-000000000001", headers=accounts["staff"].headers)
        r = await client.get("/metrics", headers=viewer.headers)
        assert r.headers["content-type"].startswith("text/plain")
        samples = _samples(r.text)
        key = ("rekisteri_http_requests_total",
               (("method", "GET"), ("route", "/v1/registrants/{registrant_id}"), ("status", "404")))
        assert samples[key] >= 1
        assert any(name == "rekisteri_http_request_duration_seconds_bucket" for name, _ in samples)
        assert not any("9b2f6c1e" in str(labels) for _, labels in samples)

    async def test_gauges_agree_with_the_database(self, client, accounts):
        body = (await client.get("/metrics", headers=accounts["viewer"].headers)).text
        samples = _samples(body)
        assert GAUGES <= {name for name, _ in samples}
        for kind in ("email", "sms", "webhook"):
            assert (("rekisteri_outbox_queue_depth", (("kind", kind),))) in samples
        stats = (await client.get("/v1/stats/requests", headers=accounts["viewer"].headers)).json()
        assert samples[("rekisteri_requests_open", ())] == stats["open_total"]
        assert samples[("rekisteri_requests_overdue", ())] == stats["overdue"]
        verified = (await client.get("/v1/audit/verify", headers=accounts["auditor"].headers)).json()
        assert samples[("rekisteri_audit_chain_length", ())] >= verified["entries"]
        assert samples[("rekisteri_audit_unsealed_entries", ())] >= 0
        assert samples[("rekisteri_audit_sealing_lag_seconds", ())] >= 0

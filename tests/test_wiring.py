"""The composition root (app.wiring): every domain's hooks are there, and nothing registers itself on import."""

from __future__ import annotations

import ast
from pathlib import Path

from app.core.config import Settings
from app.subject_requests.schemas import RequestType
from app.wiring import build

APP = Path(__file__).resolve().parents[1] / "app"


def _wiring():
    return build(Settings(jwt_secret="x" * 48))


class TestCompositionRoot:
    def test_every_hook_is_registered(self):
        wiring = _wiring()
        assert [s.name for s in wiring.erasure_steps] == ["registrants", "linked people", "waitlist"]
        assert [s.name for s in wiring.package_sections] == [
            "relationship_records", "consent_events", "consent_state", "requests", "waitlist_entries",
            "waitlist_entries_as_guardian", "waitlist_notices"]
        assert set(wiring.completion_handlers) == {t.value for t in RequestType}
        assert len(wiring.purpose_usage_checks) == 2
        assert set(wiring.outbox.send_checks) == {"waitlist_delivery"}
        assert set(wiring.outbox.key_resolvers) == {"client", "request", "recipient"}
        assert {g.name for g in wiring.gauges} >= {"rekisteri_outbox_queue_depth", "rekisteri_requests_overdue",
                                                   "rekisteri_audit_chain_length", "rekisteri_db_pool_in_use"}
        assert {(r.category, r.table) for r in wiring.retention_rules} >= {
            ("audit_log", "audit_entry"), ("login_attempts", "login_throttle"), ("api_replays", "idempotency_key"),
            ("waitlist_entries", "waitlist_entry"), ("customer_relationship", "relationship_record"),
            ("accounting_vouchers", "relationship_record")}

    def test_two_builds_share_nothing(self):
        first, second = _wiring(), _wiring()
        first.package_sections.pop()
        first.outbox.add_send_check("test", lambda *_: None)
        assert len(second.package_sections) == 7 and "test" not in second.outbox.send_checks

    def test_no_module_fills_a_registry_when_imported(self):
        # A call at module level whose name starts with register_/install is the side effect the root replaces.
        offenders = []
        for path in APP.rglob("*.py"):
            for node in ast.parse(path.read_text()).body:
                call = node.value if isinstance(node, ast.Expr) else None
                if isinstance(call, ast.Call):
                    name = getattr(call.func, "attr", None) or getattr(call.func, "id", "")
                    if name.startswith(("register_", "install")):
                        offenders.append(f"{path.relative_to(APP)}:{node.lineno}")
        assert offenders == []

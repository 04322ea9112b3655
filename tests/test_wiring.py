"""The composition root (app.wiring): every domain's hooks are there, and nothing registers itself on import."""

from __future__ import annotations

import ast
from pathlib import Path

from app.core.config import Settings
from app.db.models import Base
from app.subject_requests.schemas import RequestType
from app.wiring import build

APP = Path(__file__).resolve().parents[1] / "app"


def _wiring():
    return build(Settings(jwt_secret="x" * 48))


class TestCompositionRoot:
    def test_every_hook_is_registered(self):
        wiring = _wiring()
        assert [s.name for s in wiring.erasure_steps] == ["registrants", "linked people", "consents", "waitlist",
                                                          "requests", "outbox", "stored replies"]
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
            ("accounting_vouchers", "relationship_record"), ("accounting_books", "relationship_record"),
            ("contact_details", "registrant"), ("consents", "consent_event"), ("subject_requests", "subject_request"),
            ("staff_accounts", "user_account"), ("outbox_messages", "outbox_message")}
        assert {h.reason for h in wiring.retention_holds} == {
            "restriction (GDPR Art. 18)", "an open data-subject request", "a consent in force",
            "an active waitlist entry", "guardian of a child in the register"}

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


# Column names that hold personal data wherever they appear (or point at a person).
PERSONAL_COLUMNS = {"email", "phone", "given_name", "family_name", "full_name", "name", "address", "date_of_birth",
                    "guardian", "guardian_name", "contact_persons", "requester", "payload", "evidence", "actor_name",
                    "recorded_by_name", "created_by_name", "sent_to", "content", "response_body", "registrant_id",
                    "changes", "data", "key"}
# Tables with such a column that are kept on purpose, and why.
KEPT = {
    "register_version": "who wrote each version of the privacy statement is kept with it (GDPR Art. 5(2))",
    "api_client": "a machine client names a system, not a person",
}


class TestRetentionCoverage:
    """GDPR Art. 5(1)(e): every table holding personal data has a retention rule or an erasure step."""

    def test_every_personal_data_table_has_a_rule_or_an_erasure_step(self):
        wiring = _wiring()
        covered = {t for r in wiring.retention_rules for t in r.tables} | {
            t for s in wiring.erasure_steps for t in s.tables}
        uncovered = []
        for table in Base.metadata.sorted_tables:
            names = {c.name for c in table.columns}
            to_registrant = any(fk.column.table.name == "registrant" for fk in table.foreign_keys)
            if (to_registrant or names & PERSONAL_COLUMNS) and table.name not in covered | set(KEPT):
                uncovered.append(f"{table.name} ({', '.join(sorted(names & PERSONAL_COLUMNS)) or 'registrant FK'})")
        assert uncovered == [], "declare a retention rule (its domain's retention.py) or an erasure step"

    def test_every_rule_names_real_tables(self):
        tables = set(Base.metadata.tables)
        for rule in _wiring().retention_rules:
            assert set(rule.tables) <= tables, rule.category

"""The retention job (GDPR Art. 5(1)(e)): each rule's bound from its start event, batches, holds, audit, the CLI.

Time-travel tests freeze the service clock the day before a row's period ends and the day after.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.auth.models import LoginThrottle, UserAccount
from app.auth.principal import SYSTEM
from app.consents.models import ConsentEvent
from app.db.session import Database
from app.outbox import service as outbox
from app.outbox.models import OutboxMessage, Status
from app.register import retention
from app.register.retention import Period, bound_for
from app.register.schemas import RegisterProfile, StartEvent
from app.subject_requests.models import SubjectRequest
from app.waitlist.models import WaitlistEntry
from tests.conftest import TEST_SECRET, create_user, unique_email
from tests.register.conftest import HELSINKI, PROFILES, example, later, noon, purge_at


def _profile(**changes) -> RegisterProfile:
    return RegisterProfile.model_validate({**example(), **changes})


class TestBounds:
    """Kirjanpitolaki 1336/1997 2:10 §: vouchers 6 years from the end of the year the financial period ended in,
    the books 10 years from the end of the financial period."""

    @pytest.mark.parametrize(("period_end", "today", "bound"), [
        ("12-31", date(2025, 12, 31), date(2019, 1, 1)),   # 2019's vouchers: kept through 2025
        ("12-31", date(2026, 1, 1), date(2020, 1, 1)),     # ... and gone on 1 January 2026
        ("04-30", date(2026, 12, 31), date(2019, 5, 1)),   # period 5/2019-4/2020 ended in 2020: kept through 2026
        ("04-30", date(2027, 1, 1), date(2020, 5, 1)),
    ])
    def test_vouchers(self, period_end, today, bound):
        profile = _profile(financial_period_end=period_end)
        found = bound_for(profile, Period("P6Y", StartEvent.financial_year_end), noon(today))
        assert found == datetime.combine(bound, datetime.min.time(), tzinfo=HELSINKI)

    @pytest.mark.parametrize(("period_end", "today", "bound"), [
        ("12-31", date(2029, 12, 31), date(2019, 1, 1)),   # the books of 2019: kept through 31.12.2029
        ("12-31", date(2030, 1, 1), date(2020, 1, 1)),
        ("04-30", date(2030, 4, 30), date(2019, 5, 1)),    # period ended 30.4.2020: kept through 30.4.2030
        ("04-30", date(2030, 5, 1), date(2020, 5, 1)),
    ])
    def test_books(self, period_end, today, bound):
        profile = _profile(financial_period_end=period_end)
        found = bound_for(profile, Period("P10Y", StartEvent.financial_period_end), noon(today))
        assert found == datetime.combine(bound, datetime.min.time(), tzinfo=HELSINKI)

    def test_a_period_of_years_keeps_the_whole_last_day(self):
        found = bound_for(_profile(), Period("P3Y", StartEvent.relationship_end), noon(date(2030, 6, 16)))
        assert found == datetime(2027, 6, 16, tzinfo=HELSINKI)

    def test_the_financial_period_end_must_be_a_day_of_every_year(self):
        with pytest.raises(ValueError, match="not a day of every year"):
            _profile(financial_period_end="02-29")


class TestConsents:
    async def _ledger(self, client, controller, action: str | None) -> str:
        rid = (await client.post("/v1/registrants", headers=controller.headers, json={
            "kind": "person", "given_name": "Kaisa", "family_name": "Suostuja", "language": "fi",
            "email": unique_email("consent")})).json()["id"]
        for step in ("grant", action):
            if step:
                r = await client.post(f"/v1/registrants/{rid}/consents", headers=controller.headers, json={
                    "action": step, "purpose": "newsletter", "channel": "email", "source": "web_form",
                    "evidence": {"text": "Uutiskirje"}})
                assert r.status_code == 201, r.text
        return rid

    async def _events(self, app, rid: str) -> int:
        async with app.state.db.sessionmaker() as session:
            return (await session.execute(select(func.count()).select_from(ConsentEvent).where(
                ConsentEvent.registrant_id == uuid.UUID(rid)))).scalar_one()

    async def test_proof_is_kept_its_period_after_the_withdrawal(self, app, client, controller, register_profile,
                                                                 clock):
        withdrawn = await self._ledger(client, controller, "withdraw")
        in_force = await self._ledger(client, controller, None)
        now = clock.utcnow()  # the combined profile keeps consents P5Y after they end

        kept = await purge_at(app, later(now, "P5Y", -1))
        assert await self._events(app, withdrawn) == 2
        after = await purge_at(app, later(now, "P5Y", 1))
        assert await self._events(app, withdrawn) == 0
        assert await self._events(app, in_force) == 1  # a consent in force is never past its period
        assert after["consents"].acted >= 2 and kept["consents"].rule.start == StartEvent.withdrawal


class TestWaitlist:
    async def _entry(self, client, controller) -> str:
        r = await client.post("/v1/waitlist", headers=controller.headers, json={
            "given_name": "Maija", "family_name": "Odottaja", "age": 34, "email": unique_email("wait"),
            "language": "fi", "channels": ["email"], "interests": ["cancellations"],
            "evidence": {"text": "Haluan ilmoituksia.", "policy_version": "2026-11"}})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def _exists(self, app, entry_id: str) -> bool:
        async with app.state.db.sessionmaker() as session:
            return await session.get(WaitlistEntry, uuid.UUID(entry_id)) is not None

    async def test_an_active_entry_goes_two_years_after_joining(self, app, client, controller, register_profile,
                                                                clock):
        entry = await self._entry(client, controller)
        now = clock.utcnow()
        await purge_at(app, later(now, "P2Y", -1))
        assert await self._exists(app, entry)
        await purge_at(app, later(now, "P2Y", 1))
        assert not await self._exists(app, entry)

    async def test_counted_from_leaving_when_the_profile_says_so(self, app, client, controller, current, clock):
        document = example()
        category = next(c for c in document["data_categories"] if c["code"] == "waitlist_entries")
        category["retention_start"] = "leaving"
        await current(document=document)
        entry = await self._entry(client, controller)
        outcome = await purge_at(app, later(clock.utcnow(), "P2Y", 1))
        assert await self._exists(app, entry)  # still on the list: its period has not started
        assert outcome["waitlist_entries"].period.start == StartEvent.leaving


class TestRequests:
    async def test_a_closed_request_goes_its_period_after_closing(self, app, client, controller, register_profile,
                                                                  clock):
        filed = await client.post("/v1/requests", headers=controller.headers, json={
            "type": "access", "requester": {"name": "Maija", "email": unique_email("req")}, "channel": "email"})
        assert filed.status_code == 201, filed.text
        request_id = filed.json()["id"]
        r = await client.post(f"/v1/requests/{request_id}/transitions", headers=controller.headers,
                              json={"action": "withdraw"})
        assert r.status_code == 200, r.text
        now = clock.utcnow()

        async def exists() -> bool:
            async with app.state.db.sessionmaker() as session:
                return await session.get(SubjectRequest, uuid.UUID(request_id)) is not None

        await purge_at(app, later(now, "P3Y", -1))
        assert await exists()
        await purge_at(app, later(now, "P3Y", 1))
        assert not await exists()


class TestStaffAccounts:
    async def test_an_account_is_anonymised_a_year_after_access_ended(self, app, client, controller,
                                                                      register_profile, clock):
        user = await create_user(client, controller, "staff")
        r = await client.patch(f"/v1/users/{user.id}", headers=controller.headers, json={"active": False})
        assert r.status_code == 200, r.text
        now = clock.utcnow()

        async def email() -> str:
            async with app.state.db.sessionmaker() as session:
                return (await session.get(UserAccount, uuid.UUID(user.id), populate_existing=True)).email

        await purge_at(app, later(now, "P1Y", -1))
        assert await email() == user.email
        await purge_at(app, later(now, "P1Y", 1))
        assert await email() != user.email and "former" in await email()


class TestOperationalData:
    async def test_login_throttles_go_after_a_day(self, app, clock):
        now = clock.utcnow()
        stale, fresh = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
        async with app.state.db.sessionmaker() as session:
            session.add_all([LoginThrottle(key=stale, failures=3, window_started_at=now - timedelta(days=2)),
                             LoginThrottle(key=fresh, failures=1, window_started_at=now - timedelta(hours=2))])
            await session.commit()
        await purge_at(app, now)
        async with app.state.db.sessionmaker() as session:
            assert await session.get(LoginThrottle, stale) is None
            assert await session.get(LoginThrottle, fresh) is not None

    async def test_delivered_messages_go_after_ninety_days_and_unsent_ones_never(self, app, clock):
        async with app.state.db.sessionmaker() as session:
            sent = await outbox.enqueue(session, kind="email", payload={"to": "a@example.com", "subject": "s",
                                                                        "text": "t"})
            pending = await outbox.enqueue(session, kind="email", payload={"to": "b@example.com", "subject": "s",
                                                                           "text": "t"})
            await session.execute(OutboxMessage.__table__.update().where(OutboxMessage.id == sent.id)
                                  .values(status=Status.sent, sent_at=clock.utcnow()))
            await session.commit()
        now = clock.utcnow()
        await purge_at(app, now + timedelta(days=89))
        async with app.state.db.sessionmaker() as session:
            assert await session.get(OutboxMessage, sent.id) is not None
        await purge_at(app, now + timedelta(days=92))
        async with app.state.db.sessionmaker() as session:
            assert await session.get(OutboxMessage, sent.id, populate_existing=True) is None
            assert await session.get(OutboxMessage, pending.id) is not None


async def _marker(app, action: str) -> int:
    """Write one audit entry now (by the service clock) and return its sequence number."""
    async with app.state.db.sessionmaker() as session:
        audit.record(session, actor=SYSTEM, action=action)
        await session.commit()
        return (await session.execute(select(func.max(AuditEntry.seq)))).scalar_one()


def _with_audit_retention(period: str) -> dict:
    document = example()
    next(c for c in document["data_categories"] if c["code"] == "audit_log")["retention"] = period
    return document


class TestAuditLog:
    async def test_batches_keep_the_chain_verifiable_and_a_second_run_does_nothing(self, app, current, clock):
        await current(document=_with_audit_retention("PT1H"))
        old = await _marker(app, "test.old")
        service_now = clock.utcnow() + timedelta(hours=2)
        outcomes = await purge_at(app, service_now, rules=[r for r in app.state.wiring.retention_rules
                                                          if r.category == "audit_log"])
        assert outcomes["audit_log"].acted > 0
        async with app.state.db.sessionmaker() as session:
            assert await session.get(AuditEntry, old) is None
            assert (await audit.verify(session)).ok
        again = await purge_at(app, service_now, rules=[r for r in app.state.wiring.retention_rules
                                                       if r.category == "audit_log"])
        assert again["audit_log"].acted == 0

    async def test_one_audit_entry_per_category_with_counts(self, app, register_profile, clock):
        before = await _marker(app, "test.before")
        outcomes = await purge_at(app, clock.utcnow(), dry_run=True)
        async with app.state.db.sessionmaker() as session:
            rows = (await session.execute(select(AuditEntry.details).where(
                AuditEntry.seq > before, AuditEntry.action == "retention.purge"))).scalars().all()
        assert sorted(d["category"] for d in rows) == sorted({o for o in outcomes})
        assert all(d["dry_run"] is True and "tables" in d for d in rows)


class TestBatches:
    async def test_small_batches_act_on_everything_with_a_commit_each(self, app, clock):
        now = clock.utcnow()
        keys = [f"test:{uuid.uuid4()}" for _ in range(7)]
        async with app.state.db.sessionmaker() as session:
            session.add_all([LoginThrottle(key=k, failures=1, window_started_at=now - timedelta(days=3)) for k in keys])
            await session.commit()
        rule = next(r for r in app.state.wiring.retention_rules if r.category == "login_attempts")
        seen = []
        async with app.state.db.sessionmaker() as session:
            outcome = await retention.run_rule(session, rule, profile=None, now=now, dry_run=False, batch=2,
                                               progress=lambda _r, done, total: seen.append(done))
        assert outcome.acted >= 7 and len(seen) >= 5  # four batches of two and the last, shorter one
        async with app.state.db.sessionmaker() as session:
            assert [await session.get(LoginThrottle, k) for k in keys] == [None] * len(keys)


class TestCli:
    def _run(self, database_url: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "REKISTERI_DATABASE_URL": database_url, "REKISTERI_JWT_SECRET": TEST_SECRET}
        rekisteri = Path(sys.executable).with_name("rekisteri")
        return subprocess.run([str(rekisteri), *args], env=env, capture_output=True, text=True, timeout=120)

    @pytest.mark.commits
    def test_dry_run_prints_every_rule_with_its_cutoff_and_progress(self, database_url, register_profile):
        done = self._run(database_url, "purge", "--dry-run")
        assert done.returncode == 0, done.stderr
        assert "contact_details (registrant)" in done.stderr and "[1/" in done.stderr
        for category in ("contact_details", "customer_relationship", "accounting_vouchers", "consents",
                         "waitlist_entries", "subject_requests", "staff_accounts", "audit_log"):
            assert category in done.stdout
        assert "would anonymise" in done.stdout and "from financial_year_end" in done.stdout

    @pytest.mark.commits
    def test_json_and_a_future_date(self, database_url, register_profile):
        done = self._run(database_url, "purge", "--dry-run", "--json", "--as-of", "2040-01-01")
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        vouchers = next(line for line in lines if line["category"] == "accounting_vouchers")
        assert vouchers["cutoff"].startswith("2034-01-01")  # the query's own bound, not a rounded-off date
        assert set(vouchers) >= {"category", "table", "start_event", "cutoff", "rows_acted_on", "rows_skipped"}
        refused = self._run(database_url, "purge", "--as-of", "2040-01-01")
        assert refused.returncode == 2 and "--dry-run" in refused.stderr
        too_big = self._run(database_url, "purge", "--dry-run", "--batch-size", "20000")
        assert too_big.returncode == 2 and "between 1 and 10000" in too_big.stderr

    @pytest.mark.commits
    async def test_two_purges_at_once_do_not_both_act(self, database_url, settings):
        if not database_url.startswith("postgresql"):
            pytest.skip("SQLite has one writer at a time; the advisory lock is PostgreSQL's")
        database = Database.from_settings(settings)
        try:
            async with database.engine.connect() as other:
                await other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": retention.PURGE_LOCK_KEY})
                await other.commit()
                with pytest.raises(retention.PurgeRunning):
                    await retention.purge_job(database, rules=[], holds=[], dry_run=False)
                await other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": retention.PURGE_LOCK_KEY})
                await other.commit()
            assert await retention.purge_job(database, rules=[], holds=[], dry_run=False) == []
        finally:
            await database.engine.dispose()


class TestOneSourceForPeriods:
    """GDPR Art. 13(2)(a), 30(1)(f), 15(1)(d): the statement, the record and the package say what the rules do."""

    @pytest.mark.parametrize("name", ["uniikkiaani", "selfluencer"])
    async def test_statement_record_and_package_agree(self, app, client, controller, current, name):
        from app.register.retention import category_periods, period_words  # noqa: PLC0415
        from app.subject_requests.package import information  # noqa: PLC0415

        await current(name)
        profile = RegisterProfile.model_validate(example(name))
        rules = app.state.wiring.retention_rules
        periods = category_periods(profile, rules)
        assert set(periods) == {c.code for c in profile.data_categories}  # every category is enforced
        ropa = {c["code"]: c for c in (await client.get("/v1/register/ropa", headers=controller.headers))
                .json()["c_data_categories"]}
        package = {c["code"]: c for c in information(profile, 1, rules)["data_categories"]}
        for lang in ("fi", "en"):
            statement = (await client.get("/v1/register/statement", params={"lang": lang, "format": "json"})).json()
            items = next(s for s in statement["sections"] if s["key"] == "retention")["items"]
            for category in profile.data_categories:
                words = period_words(periods[category.code], lang)
                line = next(i for i in items if i.startswith(getattr(category.name, lang) + ":"))
                assert words in line
                assert ropa[category.code]["retention_words"][lang] == words
                assert package[category.code]["retention_words"][lang] == words
        contact = period_words(periods["contact_details"], "fi")
        assert contact == "3 vuotta asiakassuhteen päättymisestä"
        assert period_words(periods["contact_details"], "en") == "3 years after the customer relationship ends"

    async def test_a_category_no_rule_enforces_is_refused_by_name(self, client, controller):
        document = example()
        document["data_categories"].append({"code": "dreams", "name": {"fi": "Unet", "en": "Dreams"},
                                            "retention": "P1Y", "legal_basis": "consent"})
        r = await client.put("/v1/register", headers=controller.headers, json=document)
        assert r.status_code == 422, r.text
        error = r.json()["errors"][0]
        assert error["loc"] == ["body", "data_categories", len(document["data_categories"]) - 1, "code"]
        assert "dreams" in error["msg"]

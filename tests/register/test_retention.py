import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.auth.models import LoginThrottle
from app.auth.principal import SYSTEM
from app.register import retention
from app.register.retention import RetentionRule
from tests.conftest import TEST_SECRET, unique_email
from tests.register.conftest import PROFILES, example


def _with_audit_retention(period: str) -> dict:
    document = example()
    next(c for c in document["data_categories"] if c["code"] == "audit_log")["retention"] = period
    return document


async def _marker(app, action: str) -> int:
    """Write one audit entry now (by the service clock) and return its sequence number."""
    async with app.state.db.sessionmaker() as session:
        audit.record(session, actor=SYSTEM, action=action)
        await session.commit()
        return (await session.execute(select(func.max(AuditEntry.seq)))).scalar_one()


async def _purge(app, *, dry_run: bool, rules=None) -> dict:
    async with app.state.db.sessionmaker() as session:
        lines = await retention.purge(session, dry_run=dry_run, rules=rules or app.state.wiring.retention_rules)
        await session.commit()
    return {line.category: line for line in lines}


async def _verify(app):
    async with app.state.db.sessionmaker() as session:
        return await audit.verify(session)


class TestPurgeAuditLog:
    async def test_dry_run_then_purge_keeps_the_chain_verifiable(self, app, client, current, clock):
        await current(document=_with_audit_retention("P1D"))
        old = await _marker(app, "test.old")
        clock.advance(timedelta(days=2))
        kept = await _marker(app, "test.kept")

        counted = await _purge(app, dry_run=True)
        assert counted["audit_log"].count >= kept - old
        assert counted["audit_log"].deleted is False
        async with app.state.db.sessionmaker() as session:
            assert await session.get(AuditEntry, old) is not None

        purged = await _purge(app, dry_run=False)
        assert purged["audit_log"].count == counted["audit_log"].count
        async with app.state.db.sessionmaker() as session:
            assert await session.get(AuditEntry, old) is None
            assert await session.get(AuditEntry, kept) is not None
            actions = (await session.execute(select(AuditEntry.action, AuditEntry.details).where(
                AuditEntry.seq > kept).order_by(AuditEntry.seq))).all()
        assert [a for a, _ in actions] == ["retention.purge", "retention.purge"]
        assert actions[0][1]["dry_run"] is True and actions[1][1]["dry_run"] is False
        result = await _verify(app)
        assert result.ok, result

        # Idempotent: nothing older than the cutoff is left.
        again = await _purge(app, dry_run=False)
        assert again["audit_log"].count == 0
        assert (await _verify(app)).ok

    async def test_purging_everything_lets_the_chain_continue(self, app, current, clock):
        await current(document=_with_audit_retention("PT1H"))
        # Far enough that entries other tests wrote with an advanced clock are past the cutoff too.
        clock.advance(timedelta(days=30))
        purged = await _purge(app, dry_run=False)
        assert purged["audit_log"].count > 0
        assert (await _verify(app)).ok
        await _marker(app, "test.after")
        assert (await _verify(app)).ok


class TestPurgeLoginThrottle:
    async def test_rows_older_than_a_day_go(self, app, clock):
        now = clock.utcnow()
        stale, fresh = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
        async with app.state.db.sessionmaker() as session:
            session.add_all([
                LoginThrottle(key=stale, failures=3, window_started_at=now - timedelta(days=2)),
                LoginThrottle(key=fresh, failures=1, window_started_at=now - timedelta(hours=2)),
            ])
            await session.commit()
        counted = await _purge(app, dry_run=True)
        assert counted["login_attempts"].count >= 1
        await _purge(app, dry_run=False)
        async with app.state.db.sessionmaker() as session:
            assert await session.get(LoginThrottle, stale) is None
            assert await session.get(LoginThrottle, fresh) is not None


class TestLegalObligation:
    async def test_never_before_the_statutory_period(self, app, current, clock):
        await current()
        seen = []

        async def count(_session, cutoff):
            seen.append(cutoff)
            return 0

        rule = RetentionRule(category="accounting_vouchers", table="invoice", count=count, delete=count)
        await _purge(app, dry_run=False, rules=[rule])
        assert seen and seen[0] <= clock.utcnow() - timedelta(days=6 * 365)

    async def test_category_missing_from_profile_is_skipped(self, app, current):
        await current()

        async def boom(_session, _cutoff):
            raise AssertionError("a rule without a retention period ran")

        lines = await _purge(app, dry_run=False, rules=[RetentionRule("no_such_category", "nothing", boom, boom)])
        assert lines["no_such_category"].skipped


class TestCli:
    def _run(self, database_url: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "REKISTERI_DATABASE_URL": database_url, "REKISTERI_JWT_SECRET": TEST_SECRET}
        rekisteri = Path(sys.executable).with_name("rekisteri")
        return subprocess.run([str(rekisteri), *args], env=env, capture_output=True, text=True, timeout=60)

    def test_purge_dry_run_prints_counts_and_progress(self, database_url):
        done = self._run(database_url, "purge", "--dry-run")
        assert done.returncode == 0, done.stderr
        assert "[1/" in done.stdout and "audit_log (audit_entry)" in done.stdout
        for category in ("customer_relationship", "accounting_vouchers", "api_replays"):
            assert category in done.stdout  # every loaded domain registered its rules
        assert "login_attempts" in done.stdout and "would remove" in done.stdout

    def test_bootstrap_with_profile(self, tmp_path):
        # bootstrap runs once per database, so it gets a fresh one.
        fresh = f"sqlite:///{tmp_path / 'boot.db'}"
        bad = tmp_path / "bad.json"
        bad.write_text('{"controller": {"business_id": "3286283-5"}}')
        assert self._run(fresh, "migrate").returncode == 0
        refused = self._run(fresh, "bootstrap", "--email", unique_email("boot"), "--name", "Boot", "--profile", str(bad))
        assert refused.returncode == 2
        assert "controller.business_id" in refused.stderr

        # The refused run wrote nothing, so bootstrap can still run.
        done = self._run(fresh, "bootstrap", "--email", unique_email("boot"), "--name", "Boot",
                         "--profile", str(PROFILES / "selfluencer.json"))
        assert done.returncode == 0, done.stderr
        assert "register profile loaded: Selfluencer Oy" in done.stdout

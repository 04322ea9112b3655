"""The `rekisteri` command: serve, migrate, bootstrap, reset-password, purge, audit-verify, audit-checkpoints export,
openapi, up, worker, requests due, children of-age. Failures print one line on stderr and exit non-zero, never a
traceback."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app import __version__
from app.core.config import ConfigError, Settings, get_settings
from app.core.errors import DomainError
from app.core.logs import configure_logging, logging_config, redact
from app.db import migrations
from app.db.session import Database

OPENAPI_PATH = migrations.ROOT / "openapi" / "openapi.json"
DEFAULT_PROFILE = migrations.ROOT / "profiles" / "uniikkiaani.json"


def _run_in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    """Run `work` in one committed transaction."""

    async def runner() -> Any:
        database = Database.from_settings(settings)
        try:
            async with database.sessionmaker() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await database.engine.dispose()

    return asyncio.run(runner())


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    """Upgrade the database to the newest revision (concurrent runs wait for each other: a deploy step, run once)."""
    migrations.upgrade(settings.database_url, waiting=lambda line: print(line, flush=True))
    print(f"database migrated to {migrations.head_revision()}")
    return 0


def cmd_bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    """Load the profile when one is given; create the first controller (password as the last line) if there is none."""
    from app.auth import repository, service  # noqa: PLC0415 - keeps `rekisteri --help` fast
    from app.auth.principal import SYSTEM  # noqa: PLC0415
    from app.register import service as register  # noqa: PLC0415
    from app.wiring import build  # noqa: PLC0415

    # Validate the profile before anything is written, so a bad file leaves the database untouched.
    profile = register.parse_profile_file(Path(args.profile)) if args.profile else None

    async def work(session: AsyncSession) -> Any:
        if profile is not None:
            await register.put_profile(session, actor=SYSTEM, profile=profile, wiring=build(settings),
                                       allowlist=settings.callback_allowlist)
        if await repository.count_active_controllers(session) > 0:
            return None
        if not (args.email and args.name):
            raise ConfigError("--email and --name are needed to create the first controller account")
        return await service.bootstrap_controller(session, email=args.email, full_name=args.name)

    user = _run_in_session(settings, work)
    if profile is not None:
        print(f"register profile loaded: {profile.controller.name} ({args.profile})")
    if user is None:
        if profile is None:
            raise ConfigError("a controller account already exists; to get back in, run "
                              "`rekisteri reset-password --email <controller's email>`")
        print("a controller account already exists; none created")
        return 0
    print(f"controller account created: {user.email}")
    _print_one_time_password(user.one_time_password)
    return 0


def _print_one_time_password(password: str) -> None:
    print("log in with this one-time password and choose a new one (POST /v1/auth/password):")
    print(password)


def cmd_reset_password(settings: Settings, args: argparse.Namespace) -> int:
    """Break-glass on the server: a fresh one-time password (last line), lockouts lifted, audited."""
    from app.auth import service  # noqa: PLC0415

    user = _run_in_session(settings, lambda s: service.reset_password_by_email(s, email=args.email))
    print(f"one-time password set for {user.email} ({user.role}); its tokens and login lockouts are cleared")
    _print_one_time_password(user.one_time_password)
    return 0


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Walk the audit chain (and, with --checkpoints, hold it against signed checkpoints kept elsewhere); exit 1 if
    it is broken."""
    from app.audit import checkpoints, service  # noqa: PLC0415

    pinned = checkpoints.parse_file(Path(args.checkpoints).read_text()) if args.checkpoints else None

    async def work(session: AsyncSession) -> Any:
        result = await service.verify(session)
        held = await service.verify_checkpoints(session, pinned) if pinned is not None else None
        return result, held

    result, held = _run_in_session(settings, work)
    report: dict[str, Any] = {"ok": result.ok and (held is None or held.ok), "entries": result.entries,
                              "first_broken": result.first_broken, "sealed_head": result.head_seq}
    if held is not None:
        report["checkpoints"] = {"ok": held.ok, "checked": held.checked, "purged": held.purged,
                                 "failed_at": held.failed_at, "reason": held.reason}
    print(json.dumps(report))
    return 0 if report["ok"] else 1


def cmd_audit_checkpoints_export(settings: Settings, args: argparse.Namespace) -> int:
    """Print the signed checkpoints as JSON lines, for keeping outside the database."""
    from app.audit import checkpoints  # noqa: PLC0415

    lines = _run_in_session(settings, lambda s: s.run_sync(lambda sync: checkpoints.exported(sync.connection(),
                                                                                              since=args.since)))
    for line in lines:
        print(line)
    return 0


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    """Apply the retention rules (or, with --dry-run, only count), printing each rule's cutoff and counts."""
    from app.core import clock  # noqa: PLC0415
    from app.register import retention  # noqa: PLC0415
    from app.wiring import build  # noqa: PLC0415

    if args.as_of is not None and args.as_of > clock.utcnow() and not args.dry_run:
        raise ConfigError("--as-of a future date needs --dry-run (it shows what the rules will have removed by then)")
    wiring = build(settings)
    bar = ProgressBar(wiring.retention_rules)

    async def runner() -> list:
        database = Database.from_settings(settings)
        try:
            return await retention.purge_job(database, rules=wiring.retention_rules, holds=wiring.retention_holds,
                                             dry_run=args.dry_run, now=args.as_of, batch=args.batch_size,
                                             progress=bar.update)
        finally:
            await database.engine.dispose()

    outcomes = asyncio.run(runner())
    for outcome in outcomes:
        print(json.dumps(purge_line(outcome, args.dry_run), ensure_ascii=False) if args.json
              else purge_text(outcome, args.dry_run))
    if not args.json:
        verb = "would act on" if args.dry_run else "acted on"
        print(f"{verb} {sum(o.acted for o in outcomes)} rows in {len(outcomes)} rules"
              f"{' (as of ' + args.as_of.isoformat() + ')' if args.as_of else ''}")
    return 0


def purge_line(outcome: Any, dry_run: bool) -> dict[str, Any]:
    """One rule's outcome as the JSON object `purge --json` prints."""
    rule = outcome.rule
    return {"category": rule.category, "table": rule.table, "tables": list(rule.tables),
            "start_event": outcome.period.start.value if outcome.period else rule.start.value,
            "action": rule.action.value, "period": outcome.period.duration if outcome.period else None,
            "cutoff": outcome.bound.isoformat() if outcome.bound else None, "dry_run": dry_run,
            "rows_acted_on": outcome.acted, "rows_skipped": outcome.skipped, "note": outcome.note}


def purge_text(outcome: Any, dry_run: bool) -> str:
    """One rule's outcome as a line: what it did to which rows, from which cutoff, and what it skipped and why."""
    line = purge_line(outcome, dry_run)
    head = f"{line['category']:<22} {line['table']:<20}"
    if outcome.note:
        return f"{head} skipped: {outcome.note}"
    verb = {"delete": "remove", "anonymise": "anonymise"}[line["action"]]
    did = f"would {verb}" if dry_run else ("removed" if verb == "remove" else "anonymised")
    skipped = "; ".join(f"{n} kept: {why}" for why, n in outcome.skipped.items())
    return (f"{head} {did} {outcome.acted} (started before {line['cutoff']}, {line['period']} from "
            f"{line['start_event']}){'; ' + skipped if skipped else ''}")


class ProgressBar:
    """One bar per rule on stderr (redrawn in place on a terminal, one line per rule otherwise)."""

    WIDTH = 24

    def __init__(self, rules: list) -> None:
        self.rules, self.last = rules, None
        self.tty = sys.stderr.isatty()

    def update(self, rule: Any, done: int, total: int | None) -> None:
        """Draw the rule's progress."""
        total = total or 0
        if (rule, done, total) == self.last or (not self.tty and done < total):
            return
        self.last = (rule, done, total)
        filled = self.WIDTH if not total else min(self.WIDTH, self.WIDTH * done // total)
        text = (f"[{self.rules.index(rule) + 1}/{len(self.rules)}] {rule.category} ({rule.table}) "
                f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total}")
        print(("\r" if self.tty else "") + text, end="\n" if done >= total else "", file=sys.stderr, flush=True)


def parse_batch(value: str) -> int:
    """A batch size between 1 and 10,000 rows (a batch's ids go into one statement; PostgreSQL takes 32,767)."""
    if not value.isdigit() or not 0 < int(value) <= 10_000:
        raise argparse.ArgumentTypeError(f"{value!r} is not a batch size between 1 and 10000")
    return int(value)


def parse_instant(value: str) -> datetime:
    """`2027-01-01` (its start, UTC) or an RFC 3339 time with offset, for --as-of."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date such as 2027-01-01") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_days(value: str) -> int:
    """`7d` or `7` as a number of days (for `requests due --within`)."""
    text = value.strip().lower().removesuffix("d")
    if not text.isdigit() or not 0 < int(text) <= 366:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days such as 7d")
    return int(text)


def cmd_requests_due(settings: Settings, args: argparse.Namespace) -> int:
    """Print the request dashboard figures (as GET /v1/stats/requests) as JSON; exit 1 when any is overdue."""
    from datetime import timedelta  # noqa: PLC0415

    from app.auth.principal import SYSTEM  # noqa: PLC0415
    from app.subject_requests import service  # noqa: PLC0415

    figures = _run_in_session(settings, lambda s: service.stats(s, actor=SYSTEM, within=timedelta(days=args.within)))
    print(figures.model_dump_json(indent=2))
    if figures.overdue:
        print(f"rekisteri: {figures.overdue} request(s) overdue", file=sys.stderr)
        return 1  # so cron (or any monitor running this) alerts
    return 0


def cmd_children_of_age(settings: Settings, _: argparse.Namespace) -> int:
    """Flag the children who reached the guardian age (a daily job); print only how many, never who."""
    from app.registrants import guardians  # noqa: PLC0415

    count = _run_in_session(settings, guardians.flag_of_age)
    print(f"flagged {count} children who reached the guardian age (GET /v1/registrants?attention=true)")
    return 0


def openapi_document() -> str:
    """The app's OpenAPI document as committed (stable key order, trailing newline)."""
    from app.main import create_app  # noqa: PLC0415

    spec = create_app(Settings(jwt_secret="x" * 48)).openapi()
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def cmd_openapi(_: Settings, args: argparse.Namespace) -> int:
    """Write openapi/openapi.json (or, with --check, fail if it is stale)."""
    document = openapi_document()
    if args.check:
        stale = not OPENAPI_PATH.exists() or OPENAPI_PATH.read_text() != document
        print("openapi/openapi.json is stale: run `rekisteri openapi`" if stale else "openapi/openapi.json is current")
        return 1 if stale else 0
    OPENAPI_PATH.parent.mkdir(exist_ok=True)
    OPENAPI_PATH.write_text(document)
    print(f"wrote {OPENAPI_PATH}")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the HTTP service with uvicorn."""
    import uvicorn  # noqa: PLC0415

    _fresh_metrics_dir()
    # The service logs its own access lines (route templates, no query strings) and reads X-Forwarded-For
    # itself (REKISTERI_TRUSTED_PROXIES), so uvicorn's access log and proxy handling are off. A worker gets
    # 30 s (not uvicorn's 5 s) to answer its supervisor: importing the app on a loaded machine takes longer,
    # and a worker killed for it is restarted forever.
    uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers, proxy_headers=False,
                access_log=False, server_header=False, timeout_worker_healthcheck=30,
                log_config=logging_config(fmt=settings.log_format_name, level=settings.log_level))
    return 0


def _fresh_metrics_dir() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR before the workers start: counters of an earlier run must not add up."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """First-run friendly start: migrate, bootstrap a controller if there is none, serve."""
    from app.auth import repository  # noqa: PLC0415

    migrations.upgrade(settings.database_url)
    controllers = _run_in_session(settings, repository.count_active_controllers)
    if controllers == 0:
        print("first start: creating the controller account")
        cmd_bootstrap(settings, args)
        print(f"\nget a token:  curl -s -X POST http://{args.host}:{args.port}/v1/auth/token "
              f"-d grant_type=password -d username={args.email} -d password=<the password above>")
        print(f"API documentation: http://{args.host}:{args.port}/docs\n", flush=True)
    return cmd_serve(settings, args)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Deliver the outbox and seal the audit chain: until SIGTERM/SIGINT, or with --once until nothing is due."""
    import signal  # noqa: PLC0415

    from app.audit.sequencer import Sequencer  # noqa: PLC0415
    from app.outbox.worker import run_worker  # noqa: PLC0415
    from app.wiring import build  # noqa: PLC0415

    hooks = build(settings).outbox

    async def seal(stop: asyncio.Event) -> int:
        database = Database.from_settings(settings)
        try:
            sealer = Sequencer(database, settings)
            return await (sealer.drain() if args.once else sealer.run(stop))
        finally:
            await database.engine.dispose()

    async def runner() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)  # finish the batch in hand, then stop
        delivery = run_worker(settings, once=args.once, batch_size=args.batch, concurrency=args.concurrency,
                              stop=stop, out=sys.stdout, hooks=hooks)
        return await asyncio.gather(delivery, seal(stop))

    stats, sealed = asyncio.run(runner())
    print(f"outbox worker done: sent {stats.sent}, retried {stats.retried}, failed {stats.failed}, "
          f"cancelled {stats.cancelled}", flush=True)
    print(f"audit sequencer done: sealed {sealed} entries", flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rekisteri", description="Rekisteri personal-data register service")
    parser.add_argument("--version", action="version", version=f"rekisteri {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def serve_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--workers", type=int, default=1)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve_options(serve)
    serve.set_defaults(func=cmd_serve)
    commands.add_parser("migrate", help="migrate the database to the newest revision").set_defaults(func=cmd_migrate)
    boot = commands.add_parser("bootstrap", help="create the first controller account and/or load a register profile")
    boot.add_argument("--email", help="email of the first controller (created only when there is none)")
    boot.add_argument("--name", help="name of the first controller")
    boot.add_argument("--profile", help="a register profile JSON file to load as a new version")
    boot.set_defaults(func=cmd_bootstrap)
    reset = commands.add_parser("reset-password", help="break-glass: a new one-time password for an account")
    reset.add_argument("--email", required=True)
    reset.set_defaults(func=cmd_reset_password)
    purge = commands.add_parser("purge", help="delete or anonymise data past its retention period")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    purge.add_argument("--as-of", type=parse_instant, help="as if run on this date (a later one only with --dry-run)")
    purge.add_argument("--json", action="store_true", help="one JSON object per rule, for scripts")
    purge.add_argument("--batch-size", type=parse_batch, default=5000, help="rows per transaction (default 5000)")
    purge.set_defaults(func=cmd_purge)
    verify = commands.add_parser("audit-verify", help="verify the audit hash chain")
    verify.add_argument("--checkpoints", metavar="FILE",
                        help="signed checkpoints exported earlier (`audit-checkpoints export`) the chain must match")
    verify.set_defaults(func=cmd_audit_verify)
    marks = commands.add_parser("audit-checkpoints", help="signed checkpoints of the audit chain")
    mark_jobs = marks.add_subparsers(dest="job", required=True)
    export = mark_jobs.add_parser("export", help="print the signed checkpoints as JSON lines, to keep elsewhere")
    export.add_argument("--since", type=int, default=0, help="only checkpoints from this sequence number on")
    export.set_defaults(func=cmd_audit_checkpoints_export)
    spec = commands.add_parser("openapi", help="regenerate openapi/openapi.json")
    spec.add_argument("--check", action="store_true", help="only check that the committed file is current")
    spec.set_defaults(func=cmd_openapi)
    worker = commands.add_parser("worker", help="deliver queued email, SMS and webhook messages; seal the audit chain")
    worker.add_argument("--once", action="store_true", help="exit when nothing is due instead of waiting")
    worker.add_argument("--batch", type=int, default=0, help="messages claimed at a time (default: settings)")
    worker.add_argument("--concurrency", type=int, default=0, help="messages sent at once (default: settings)")
    worker.set_defaults(func=cmd_worker)
    requests = commands.add_parser("requests", help="data-subject request jobs")
    request_jobs = requests.add_subparsers(dest="job", required=True)
    due = request_jobs.add_parser("due", help="print open, overdue and soon-due requests (as /v1/stats/requests)")
    due.add_argument("--within", type=parse_days, default=7, help="the 'due soon' window, e.g. 7d (default)")
    due.set_defaults(func=cmd_requests_due)
    children = commands.add_parser("children", help="jobs on children and their guardians")
    children_jobs = children.add_subparsers(dest="job", required=True)
    children_jobs.add_parser("of-age", help="daily: flag children who reached the guardian age (prints a count)") \
        .set_defaults(func=cmd_children_of_age)
    up = commands.add_parser("up", help="migrate, bootstrap on first start, and serve")
    serve_options(up)
    up.add_argument("--email", default="controller@example.com", help="email of the first controller")
    up.add_argument("--name", default="Rekisterinpitäjä", help="name of the first controller")
    up.add_argument("--profile", default=str(DEFAULT_PROFILE) if DEFAULT_PROFILE.exists() else None,
                    help="register profile loaded on first start (default: the singing school's example)")
    up.set_defaults(func=cmd_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: one line on stderr and a non-zero exit for anything that fails."""
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
        configure_logging(fmt=settings.log_format_name, level=settings.log_level)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        return args.func(settings, args)
    except ConfigError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        print(f"rekisteri: {lines[0]}", file=sys.stderr)
        for line in lines[1:]:
            print(f"  - {line}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        for error in exc.errors():
            name = "REKISTERI_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"rekisteri: {name}: {error['msg']}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"rekisteri: {exc.detail}", file=sys.stderr)
        return 2
    except (DBAPIError, OSError) as exc:
        logging.getLogger("rekisteri.cli").debug("database error", exc_info=exc)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"rekisteri: the database is not reachable or refused the command: {redact(reason)[:200]}", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - a command-line tool answers in one line, not a traceback
        logging.getLogger("rekisteri.cli").debug("unexpected error", exc_info=exc)
        detail = redact(str(exc).splitlines()[0]) if str(exc) else ""
        print(f"rekisteri: unexpected {type(exc).__name__}: {detail[:200]} (REKISTERI_LOG_LEVEL=DEBUG shows the "
              "traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

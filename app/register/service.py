"""The register profile: versions, retire-not-delete of purposes, the statement and the Art. 30 record."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.principal import Principal
from app.core import clock
from app.core.errors import Conflict, Invalid, NotFound
from app.db.pagination import Page, PageParams, make_page
from app.outbox.urls import validate_callback_url
from app.register import repository as repo
from app.register import retention
from app.register import ropa as ropa_record
from app.register.retention import RetentionRule
from app.register import statement as rendering
from app.register.models import RegisterVersion
from app.register.schemas import (
    Purpose,
    RegisterProfile,
    RegisterVersionRead,
    RegisterVersionSummary,
    RopaRead,
)

if TYPE_CHECKING:
    from app.wiring import Wiring

DEFAULT_GUARDIAN_AGE = 13

PurposeUsageCheck = Callable[[AsyncSession, set[str]], Awaitable[set[str]]]


async def purposes_in_use(session: AsyncSession, codes: set[str], *, checks: list[PurposeUsageCheck]) -> set[str]:
    """Which of these purpose codes consents, waitlist entries or other modules still name."""
    used: set[str] = set()
    for check in checks:
        if codes - used:
            used |= await check(session, codes - used)
    return used & codes


def _read(version: RegisterVersion) -> RegisterVersionRead:
    return RegisterVersionRead(number=version.number, created_at=version.created_at, created_by=version.created_by,
                               created_by_name=version.created_by_name,
                               profile=RegisterProfile.model_validate(version.document))


# A written version never changes, so its parsed profile is kept (the newest few), keyed by database,
# number and time; writing a version replaces the entry, so a number written again after a rolled-back
# attempt is never mistaken for the old one.
_PARSED_MAX = 16
_parsed: OrderedDict[tuple[str, int, str], RegisterProfile] = OrderedDict()
# Within one transaction the version in force is read once: the session's memo (cleared at commit and
# rollback, replaced by `put_profile`).
_MEMO = "register.current_version"


def _cache_key(session: AsyncSession, number: int, created_at: datetime) -> tuple[str, int, str]:
    bind = session.get_bind()
    url = getattr(bind, "url", None) or bind.engine.url
    return str(url), number, created_at.isoformat()


def _remember(key: tuple[str, int, str], profile: RegisterProfile) -> None:
    _parsed[key] = profile
    _parsed.move_to_end(key)
    while len(_parsed) > _PARSED_MAX:
        _parsed.popitem(last=False)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_memo(session: Session, *_: object) -> None:
    session.info.pop(_MEMO, None)


async def current_version(session: AsyncSession) -> tuple[int, RegisterProfile] | None:
    """The number and profile of the version in force (None before the first); read once per transaction."""
    if _MEMO in session.info:
        return session.info[_MEMO]
    latest = await repo.latest_key(session)
    current = None
    if latest is not None:
        number, created_at = latest
        key = _cache_key(session, number, created_at)
        if key not in _parsed:
            version = await repo.by_number(session, number=number)
            assert version is not None
            _remember(key, RegisterProfile.model_validate(version.document))
        current = number, _parsed[key]
    session.info[_MEMO] = current
    return current


async def current_profile(session: AsyncSession) -> RegisterProfile | None:
    """The profile in force, or None before the first version is written."""
    current = await current_version(session)
    return current[1] if current else None


async def guardian_age(session: AsyncSession) -> int:
    """The age under which a guardian acts for a child (13 until a profile says otherwise)."""
    profile = await current_profile(session)
    return profile.rights_policy.guardian_age if profile else DEFAULT_GUARDIAN_AGE


async def active_purpose(session: AsyncSession, *, code: str, loc: list[str | int]) -> Purpose:
    """The purpose with this code if it may take new consents; 422 naming `loc` if unknown or retired."""
    profile = await current_profile(session)
    purpose = profile.purpose(code) if profile else None
    if purpose is None:
        raise Invalid(f"unknown purpose code {code!r}: the register profile does not define it", loc=loc)
    if purpose.retired:
        raise Invalid(f"purpose {code!r} is retired and takes no new consents", loc=loc)
    return purpose


async def _latest_version(session: AsyncSession) -> RegisterVersion:
    version = await repo.latest(session)
    if version is None:
        raise NotFound("no register profile has been written yet: PUT /v1/register")
    return version


async def get_current(session: AsyncSession) -> RegisterVersionRead:
    """The newest version with its profile."""
    return _read(await _latest_version(session))


async def get_version(session: AsyncSession, *, number: int) -> RegisterVersionRead:
    """One version with its profile."""
    version = await repo.by_number(session, number=number)
    if version is None:
        raise NotFound(f"register profile version {number} does not exist")
    return _read(version)


async def list_versions(session: AsyncSession, *, params: PageParams) -> Page[RegisterVersionSummary]:
    """The versions, newest first."""
    rows = await repo.list_versions(session, params=params)
    return make_page(rows, params, keyset=repo.VERSIONS_KEYSET, convert=RegisterVersionSummary.model_validate)


async def _refuse_deleting_used_purposes(session: AsyncSession, *, old: RegisterProfile, new: RegisterProfile,
                                         checks: list[PurposeUsageCheck]) -> None:
    removed = {p.code for p in old.purposes} - {p.code for p in new.purposes}
    used = sorted(await purposes_in_use(session, removed, checks=checks)) if removed else []
    if used:
        names = ", ".join(repr(code) for code in used)
        raise Conflict(
            f"purpose {names} is in use by consents or waitlist entries, so it cannot be deleted; "
            "keep it in the profile with \"retired\": true instead (a retired purpose takes no new consents)",
            errors=[{"loc": ["body", "purposes"], "msg": f"purpose {code!r} is in use: retire it, do not delete it"}
                    for code in used])


async def _check_recipient_callbacks(profile: RegisterProfile, allowlist: Iterable[str]) -> None:
    """Every recipient's callback URL passes the same SSRF guard as a client's (422 naming the recipient)."""
    for i, recipient in enumerate(profile.recipients):
        if recipient.callback_url:
            await validate_callback_url(recipient.callback_url, allowlist=allowlist,
                                        loc=["body", "recipients", i, "callback_url"])


def _check_retention_rules(profile: RegisterProfile, rules: Sequence[RetentionRule]) -> None:
    """A category whose period no rule enforces would be a promise nobody keeps (GDPR Art. 5(1)(e), 13(2)(a))."""
    missing = retention.uncovered(profile, rules)
    if missing:
        raise Invalid("no retention rule enforces the data categories " + ", ".join(c for _, c in missing) +
                      "; use a category the service enforces (see docs/operating.md#retention)",
                      loc=["body", "data_categories", missing[0][0], "code"])


async def put_profile(session: AsyncSession, *, actor: Principal, profile: RegisterProfile,
                      wiring: Wiring, allowlist: Iterable[str] = ()) -> RegisterVersionRead:
    """Write the profile as a new version; deleting a purpose in use or an unsafe callback URL is refused."""
    await _check_recipient_callbacks(profile, allowlist)
    _check_retention_rules(profile, wiring.retention_rules)
    previous = await repo.latest(session)
    if previous is not None:
        await _refuse_deleting_used_purposes(session, old=RegisterProfile.model_validate(previous.document),
                                             new=profile, checks=wiring.purpose_usage_checks)
    version = RegisterVersion(
        number=previous.number + 1 if previous else 1,
        document=profile.model_dump(mode="json"),
        created_at=clock.utcnow(),
        created_by=str(actor.id) if actor.id else actor.kind,
        created_by_name=actor.name,
    )
    try:
        await repo.add(session, version)
    except IntegrityError as exc:
        raise Conflict("another version of the register profile was written at the same time; try again") from exc
    audit.record(session, actor=actor, action="register.update", resource_type="register_version",
                 resource_id=version.number, details={"version": version.number})
    written = _read(version)
    _remember(_cache_key(session, version.number, version.created_at), written.profile)
    session.info[_MEMO] = version.number, written.profile
    return written


def parse_profile_file(path: Path) -> RegisterProfile:
    """Read and validate a profile JSON file; a DomainError names what is wrong."""
    try:
        return RegisterProfile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise Invalid(f"cannot read profile {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise Invalid(f"profile {path} is not JSON: {exc}") from exc
    except ValidationError as exc:
        errors = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        raise Invalid(f"profile {path} is invalid: {detail}", errors=errors) from exc


async def statement(session: AsyncSession, *, lang: str, fmt: str,
                    rules: Sequence[RetentionRule] = ()) -> rendering.Rendered:
    """The public privacy statement of the current profile; periods in the words of the rules that enforce them."""
    version = _read(await _latest_version(session))
    return rendering.render(version, lang=lang, fmt=fmt, periods=retention_words(version.profile, rules, lang))


def retention_words(profile: RegisterProfile, rules: Sequence[RetentionRule], lang: str) -> dict[str, str]:
    """Each category's period and start event in words, from its rule (GDPR Art. 13(2)(a), 30(1)(f), 15(1)(d))."""
    return {code: retention.period_words(period, lang)
            for code, period in retention.category_periods(profile, rules).items()}


async def ropa(session: AsyncSession, *, actor: Principal, rules: Sequence[RetentionRule]) -> RopaRead:
    """The record of processing activities (Art. 30(1)); reading it is audited."""
    record = ropa_record.build(_read(await _latest_version(session)), rules=rules)
    audit.record(session, actor=actor, action="register.ropa.read", resource_type="register_version",
                 resource_id=record.version)
    return record

"""The access (Art. 15) and portability (Art. 20) package: built from a registry of sections, frozen as bytes.

Each domain declares the sections of what it holds about a person (`PackageSection(name, fn, title=...)`,
`fn(session, registrant_id)` returning the rows as plain dicts); `app.wiring` lists them in order. Build with narrow Core selects and orjson:
a registrant with 10,000 records must be packed in well under a second.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry, AuditSubject
from app.auth.models import ApiClient
from app.core.csvcells import csv_text
from app.core.humanize import LANGUAGES, duration_words
from app.register import retention
from app.register.retention import RetentionRule
from app.register.schemas import EU_EEA, RegisterProfile
from app.register.texts import TEXTS as STATEMENT_TEXTS
from app.registrants import repository as registrants_repo
from app.registrants.models import RegistrantHistory
from app.registrants import guardians
from app.registrants.repository import Visibility
from app.subject_requests import letter
from app.subject_requests import repository as repo
from app.subject_requests.schemas import OnBehalf
from app.subject_requests.states import RequestType
from app.subject_requests.texts import TEXTS

FORMAT_VERSION = "2.1"
# The versioned JSON Schema of the package, published beside the API's own spec.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "openapi" / f"package-{FORMAT_VERSION}.schema.json"
SectionBuilder = Callable[[AsyncSession, uuid.UUID], Awaitable[list[dict[str, Any]]]]
_REGISTRANT_FIELDS = ("id", "kind", "given_name", "family_name", "name", "business_id", "date_of_birth",
                      "birth_date_estimated",
                      "contact_persons", "email", "phone", "address", "language", "status", "created_at",
                      "updated_at")
_RIGHTS = ("access", "rectification", "erasure", "restriction", "portability", "objection", "withdraw", "complaint")


@dataclass(frozen=True)
class PackageSection:
    """One kind of data held on a person, under `data.<name>` of the package."""

    name: str
    build: SectionBuilder
    title: dict[str, str]
    # Data the person provided (Art. 20) goes into a portability package too; derived data only into access.
    provided: bool = True


AE, AS, HIST, CLIENT = (AuditEntry.__table__, AuditSubject.__table__, RegistrantHistory.__table__,
                        ApiClient.__table__)
# Art. 20 covers data processed on consent or a contract only.
PORTABLE_BASES = ("consent", "contract")


def _kind_of(action: str) -> str:
    """What an audited action did to the person's data: read, change, export, notice or other."""
    if "export" in action or action.endswith((".csv", ".receipt")):
        return "export"
    if action.endswith((".read", ".list")) or ".read" in action:
        return "read"
    if "notif" in action:
        return "notice"
    return "change" if "." in action else "other"


async def consultations(session: AsyncSession, registrant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Who consulted or changed the person's data and when, from the audit subject index (CJEU C-579/21):
    staff by name and role, machine clients by the system they speak for."""
    stmt = (select(AE.c.at, AE.c.actor_type, AE.c.actor_id, AE.c.actor_name, AE.c.role, AE.c.action)
            .join(AS, AS.c.entry_seq == AE.c.seq).where(AS.c.registrant_id == registrant_id).order_by(AE.c.seq))
    rows = [dict(row) for row in (await session.execute(stmt)).mappings()]
    client_ids = {uuid.UUID(r["actor_id"]) for r in rows if r["actor_type"] == "client" and r["actor_id"]}
    systems = {}
    if client_ids:
        found = await session.execute(select(CLIENT.c.id, CLIENT.c.system).where(CLIENT.c.id.in_(client_ids)))
        systems = {str(row.id): row.system for row in found}
    return [{"at": r["at"], "actor_type": r["actor_type"], "actor": r["actor_name"], "role": r["role"],
             "system": systems.get(r["actor_id"] or ""), "action": r["action"], "kind": _kind_of(r["action"])}
            for r in rows]


async def change_history(session: AsyncSession, registrant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The person's change history: when, what kind of change, by whom, which fields (never old values)."""
    stmt = (select(HIST.c.at, HIST.c.action, HIST.c.actor_type, HIST.c.actor_name.label("actor"), HIST.c.fields)
            .where(HIST.c.registrant_id == registrant_id).order_by(HIST.c.at, HIST.c.version))
    return [dict(row) for row in (await session.execute(stmt)).mappings()]


def _portable(rows: list[dict[str, Any]], profile: RegisterProfile,
              left_out: dict[str, str]) -> list[dict[str, Any]]:
    """The rows Art. 20 covers: not those of a category kept on another basis (noted in `left_out`)."""
    kept = []
    for row in rows:
        category = profile.category(row["data_category"]) if row.get("data_category") else None
        if category is not None and category.legal_basis.value not in PORTABLE_BASES:
            left_out[category.code] = category.legal_basis.value
            continue
        kept.append(row)
    return kept


def _default(value: Any) -> Any:
    """What orjson does not know natively: asyncpg's own UUID class (a uuid.UUID subclass) and decimals."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# --- building --------------------------------------------------------------------------------

def registrant_dict(row: RowMapping) -> dict[str, Any]:
    """The registrant as it appears in the package."""
    out = {k: row[k] for k in _REGISTRANT_FIELDS}
    out["external_refs"] = row["refs_json"] or []
    out["customer_types"] = sorted(row["types_json"] or [])
    for side in ("guardians", "children"):
        out[side] = [{**link, "registrant_id": str(link["registrant_id"]), "linked_at": link["linked_at"].isoformat()}
                     for link in guardians.links(row[f"{side}_json"])]
    return out


def _localized(value: Any) -> dict[str, str] | None:
    """A fi/en text as a plain dict (None stays None)."""
    return {"fi": value.fi, "en": value.en} if value is not None else None


def information(profile: RegisterProfile, version: int, rules: Sequence[RetentionRule] = ()) -> dict[str, Any]:
    """The Art. 15(1)-(2) information, from the profile version in force; each category's period and its start
    event (Art. 15(1)(d)) in the words of the rule that enforces it, as the statement and the Art. 30 record say."""
    periods = retention.category_periods(profile, rules)
    rights = {key: {lang: STATEMENT_TEXTS[lang]["rights"][key] for lang in ("fi", "en")} for key in _RIGHTS}
    return {
        "profile_version": version,
        "controller": profile.controller.model_dump(mode="json", exclude_none=True),
        "register_name": _localized(profile.register_name),
        "purposes": [{"code": p.code, "name": _localized(p.name), "legal_basis": p.legal_basis.value,
                      "description": _localized(p.description), "data_categories": p.data_categories}
                     for p in profile.purposes if not p.retired],
        "data_categories": [_category(c, periods.get(c.code)) for c in profile.data_categories],
        "recipients": [{"name": r.name, "role": r.role.value, "purpose": _localized(r.purpose), "location": r.location,
                        "third_country": r.location not in EU_EEA,
                        "safeguard": r.safeguard.value if r.safeguard else None,
                        "safeguard_note": _localized(r.safeguard_note)} for r in profile.recipients],
        "retention": {c.code: periods[c.code].duration if c.code in periods else c.retention
                      for c in profile.data_categories},
        "sources": [_localized(s) for s in profile.sources],
        "rights": rights,
        "automated_decision_making": {"used": False, **TEXTS["automated_decision_making"]},
        "complaint_authority": TEXTS["complaint"],
        "time_zone": profile.rights_policy.time_zone,
    }


def _category(category: Any, period: retention.Period | None) -> dict[str, Any]:
    """A data category with its period: as its rule counts it, or (no rule) as the profile words it."""
    base = {"code": category.code, "name": _localized(category.name), "legal_basis": category.legal_basis.value,
            "statute": category.statute}
    if period is None:
        return {**base, "retention": category.retention,
                "retention_words": {lang: duration_words(category.retention, lang) for lang in LANGUAGES},
                "retention_trigger": _localized(category.retention_trigger)}
    return {**base, "retention": period.duration, "start_event": period.start.value,
            "retention_words": {lang: retention.period_words(period, lang) for lang in LANGUAGES}}


@dataclass(frozen=True)
class Built:
    """A package as stored: its bytes, digest and language."""

    content: bytes
    sha256: str
    language: str
    generated_at: datetime


async def build(session: AsyncSession, *, request: RowMapping, profile: RegisterProfile, profile_version: int,
                now: datetime, sections: Sequence[PackageSection], rules: Sequence[RetentionRule] = ()) -> Built:
    """Build the package of a request (access: everything; portability: what the person provided)."""
    registrant_id = request["registrant_id"]
    row = await registrants_repo.get(session, registrant_id=registrant_id, visibility=Visibility())
    assert row is not None  # linked registrants are never deleted
    portability = request["type"] == RequestType.portability
    data, left_out, kept_elsewhere = {}, [], {}
    for section in sections:
        if portability and not section.provided:
            left_out.append({"section": section.name, "reason": "derived"})
            continue
        rows = await section.build(session, registrant_id)
        data[section.name] = _portable(rows, profile, kept_elsewhere) if portability else rows
    body: dict[str, Any] = {"registrant": registrant_dict(row), "data": data}
    if request["on_behalf"] != OnBehalf.self and request["authority"]:
        # A child's package names the guardian (or any representative) who received it.
        authority = request["authority"]
        body["received_by"] = {"on_behalf": request["on_behalf"], "name": authority.get("name"),
                               "basis": authority.get("basis"), "registrant_id": authority.get("registrant_id")}
    if portability:
        body["left_out"] = left_out + [{"category": code, "reason": basis}
                                       for code, basis in sorted(kept_elsewhere.items())]
    else:
        body["information"] = information(profile, profile_version, rules)
        body["consultation_log"] = await consultations(session, registrant_id)
        body["change_history"] = await change_history(session, registrant_id)
        # CJEU C-154/21: the actual recipients by name; here the systems that received the person's data.
        body["information"]["disclosed_to"] = sorted({c["system"] for c in body["consultation_log"] if c["system"]})
    content = orjson.dumps(body, default=_default, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(content).hexdigest()
    meta = {"format_version": FORMAT_VERSION, "generated_at": now, "request_id": request["id"],
            "request_type": request["type"], "received_at": request["received_at"], "registrant_id": registrant_id,
            "sections": list(data),
            "sha256": digest, "sha256_of": "the package without _meta, as compact JSON with sorted keys"}
    # `_meta` first, then the hashed bytes unchanged, so anyone can check the digest.
    full = b'{"_meta":' + orjson.dumps(meta, default=_default) + b"," + content[1:]
    language = row["language"] if row["language"] in LANGUAGES else "fi"
    return Built(content=full, sha256=digest, language=language, generated_at=now)


# --- rendering -------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    """A value as table text: nested values as compact JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def _table(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The union of the rows' keys (in first-seen order) and the rows."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns), rows


def render_html(content: bytes, *, lang: str, sections: Sequence[PackageSection],
                profile: RegisterProfile | None) -> str:
    """The package as a letter a person can read, in Finnish, English or Swedish (Art. 12(1))."""
    return letter.render(orjson.loads(content), lang=lang, titles={s.name: s.title for s in sections},
                         profile=profile)


def render_zip(content: bytes) -> bytes:
    """package.json plus one CSV per table (the registrant and each section)."""
    package = orjson.loads(content)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("package.json", content)
        archive.writestr("registrant.csv", _csv([package["registrant"]]))
        for name, rows in package["data"].items():
            archive.writestr(f"{name}.csv", _csv(rows))
    return out.getvalue()


def _csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV with a header of every key; cells that would start a formula are neutralised."""
    columns, _ = _table(rows)
    return csv_text(columns, ([_cell(row.get(c)) for c in columns] for row in rows))

"""The package as a letter a person can read (GDPR Art. 12(1)), in Finnish, English or Swedish.

The frozen JSON package is turned into plain rows of label and text: codes become words, durations
words ("3 vuotta"), times local ("28.2.2026 klo 23.59"), nested data short lines, and only the fields of
the person's kind are shown (no business ID for a private person). Jinja2 lays them out, escaping all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.core.humanize import DEFAULT_TIME_ZONE, duration_words, format_date, format_datetime
from app.register.schemas import RegisterProfile
from app.register.texts import TEXTS as STATEMENT_TEXTS
from app.subject_requests.letter_texts import CODE_ALIASES, CODES, COUNTRIES, LABELS, LETTER
from app.registrants.models import RegistrantKind

_TEMPLATES = Path(__file__).with_name("templates")
_PERSON_FIELDS = ("given_name", "family_name", "date_of_birth", "guardians", "children", "email", "phone", "address",
                  "language",
                  "customer_types", "external_refs", "status", "created_at")
_ORGANISATION_FIELDS = ("name", "business_id", "contact_persons", "email", "phone", "address", "language",
                        "customer_types", "external_refs", "status", "created_at")
# Technical keys that say nothing to the person (the JSON package keeps them).
_HIDDEN = {"id", "event_id", "request_id", "entry_id", "registrant_id", "profile_version", "sha256", "message_id",
           "outcome", "actor_type", "kind_code", "wave"}
# Columns in the order a reader looks for them: when, what, about what, how; the rest after.
_ORDER = ("occurred_at", "effective_at", "received_at", "joined_at", "created_at", "type", "action", "purpose",
          "state", "status", "channel", "interest", "data", "data_category", "source", "given_by", "evidence",
          "due_at", "completed_at", "recorded_at")
_INSTANT = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$")
_DAY = re.compile(r"^\d{4}-\d\d-\d\d$")
_DURATION = re.compile(r"^P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?)?$")


@dataclass
class Table:
    """A titled table of already-worded cells."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


class Words:
    """Turns the package's values into words in one language, with the profile's names for its codes."""

    def __init__(self, lang: str, profile: RegisterProfile | None, time_zone: str) -> None:
        self.lang, self.profile, self.time_zone = lang, profile, time_zone
        self.codes, self.labels = CODES[lang], LABELS[lang]
        self.text_lang = "en" if lang == "sv" else lang  # profile texts exist in Finnish and English

    def label(self, key: str) -> str:
        """The name of a field."""
        return self.labels.get(key, key.replace("_", " ").capitalize())

    def code(self, key: str, value: str) -> str | None:
        """The word for a code of a field, if it is one."""
        if key in ("purpose", "purposes") and self.profile and (purpose := self.profile.purpose(value)):
            return getattr(purpose.name, self.text_lang)
        if key == "data_category" and self.profile and (category := self.profile.category(value)):
            return getattr(category.name, self.text_lang)
        return self.codes.get(CODE_ALIASES.get(key, key), {}).get(value)

    def value(self, key: str, value: Any) -> str:
        """A value as text: codes as words, times local, durations in words, nested data as short lines."""
        if value is None or value == [] or value == {}:
            return ""
        if isinstance(value, bool):
            return LETTER[self.lang]["yes" if value else "no"]
        if isinstance(value, dict):
            return self.mapping(value)
        if isinstance(value, list):
            return ", ".join(self.value(key, item) for item in value)
        if isinstance(value, (datetime, date)):
            value = value.isoformat()
        if isinstance(value, str):
            return self.text(key, value)
        return str(value)

    def text(self, key: str, value: str) -> str:
        """A string value in words."""
        worded = self.code(key, value)
        if worded is not None:
            return worded
        if key == "field":
            return self.label(value)
        if key == "customer_types":  # the controller's own codes, read as words
            return value.replace("_", " ").replace("-", " ")
        if key == "country" or key == "location":
            return COUNTRIES[self.lang].get(value, value)
        if _INSTANT.match(value):
            return format_datetime(value.replace(" ", "T"), self.lang, time_zone=self.time_zone)
        if _DAY.match(value):
            return format_date(value, self.lang)
        if _DURATION.match(value):
            return duration_words(value, self.lang)
        return value

    def mapping(self, value: dict[str, Any]) -> str:
        """A nested object as "label: value" parts; an address or a contact as one line."""
        if {"street", "postal_code", "city"} <= value.keys():
            return f"{value['street']}, {value['postal_code']} {value['city']}"
        if "name" in value and value.keys() <= {"name", "email", "phone", "registrant_id"}:
            return ", ".join(str(value[k]) for k in ("name", "email", "phone") if value.get(k))
        if {"system", "id"} == set(value):
            return f"{value['system']}: {value['id']}"
        if {"amount", "currency", "ground"} <= value.keys():
            return f"{value['amount']} {value['currency']}, {self.value('ground', value['ground'])}"
        parts = [f"{self.label(k)}: {self.value(k, v)}" for k, v in value.items() if k not in _HIDDEN and v not in
                 (None, "", [], {})]
        return "; ".join(parts)

    def row(self, key: str, value: Any) -> tuple[str, str]:
        """A labelled field."""
        return self.label(key), self.value(key, value)


def _section(words: Words, title: str, rows: list[dict[str, Any]]) -> Table:
    """A data section as a table of the keys that say something to the person."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(k for k, v in row.items() if k not in _HIDDEN))
    columns = [k for k in keys if any(row.get(k) not in (None, "", [], {}) for row in rows)]
    columns.sort(key=lambda k: _ORDER.index(k) if k in _ORDER else len(_ORDER))
    table = Table(title, [words.label(k) for k in columns])
    table.rows = [[words.value(k, row.get(k)) for k in columns] for row in rows]
    return table


def _who(words: Words, entry: dict[str, Any]) -> str:
    """Who acted: staff by name and role, a machine client by its system, the service, or the person."""
    t = LETTER[words.lang]
    if entry.get("system"):
        return t["system"].format(system=entry["system"])
    if entry.get("actor_type") in ("system", None) and not entry.get("actor"):
        return t["service"]
    if entry.get("actor_type") in ("registrant", "anonymous"):
        return t["you_yourself"]
    role = words.codes["role"].get(entry.get("role") or "", "")
    return f"{entry.get('actor') or ''} ({role})" if role else str(entry.get("actor") or "")


def _consultations(words: Words, log: list[dict[str, Any]]) -> Table:
    """The consultation log as a table: when, who, what."""
    c = LETTER[words.lang]["columns"]
    table = Table(LETTER[words.lang]["consultations"], [c["when"], c["who"], c["what"]])
    table.rows = [[words.value("at", e["at"]), _who(words, e), words.codes["action"][e["kind"]]] for e in log]
    return table


def _history(words: Words, history: list[dict[str, Any]]) -> Table:
    """The change history as a table: when, who, what, which fields."""
    c = LETTER[words.lang]["columns"]
    table = Table(LETTER[words.lang]["history"], [c["when"], c["who"], c["what"], c["fields"]])
    table.rows = [[words.value("at", h["at"]), _who(words, h),
                   words.codes["action"].get(h["action"], words.codes["action"]["change"]),
                   ", ".join(words.label(f) for f in h.get("fields") or [])] for h in history]
    return table


def _information(words: Words, info: dict[str, Any]) -> dict[str, Any]:
    """The Art. 15(1)-(2) information in words."""
    lang, text = words.lang, words.text_lang
    t = LETTER[lang]
    bases = words.codes["legal_basis"]
    categories = []
    for c in info["data_categories"]:
        line = f"{c['name'][text]}: {t['kept_for'].format(period=c['retention_words'][lang])}"
        if c.get("retention_trigger"):
            line += f" {c['retention_trigger'][text]}"
        categories.append(line + (f" ({c['statute']})" if c.get("statute") else ""))
    recipients = []
    for r in info["recipients"]:
        line = f"{r['name']} ({words.codes['role'][r['role']]}, {COUNTRIES[lang].get(r['location'], r['location'])})"
        line += f": {r['purpose'][text].rstrip('.')}" if r.get("purpose") else ""
        if r["third_country"]:
            safeguard = STATEMENT_TEXTS[text]["safeguards"].get(r["safeguard"], r["safeguard"])
            line += f"; {t['outside_eea'].format(safeguard=safeguard)}"
        recipients.append(line)
    controller = info["controller"]
    return {
        "controller": f"{controller['name']}, {t['business_id']} {controller['business_id']}",
        "register": info["register_name"][text],
        "purposes": [f"{p['name'][text]} ({bases[p['legal_basis']]})" for p in info["purposes"]],
        "categories": categories,
        "recipients": recipients,
        "disclosed_to": [t["system"].format(system=s) for s in info.get("disclosed_to", [])],
        "sources": [s[text] for s in info["sources"]],
        "rights": list(t["rights_text"].values()),
        "complaint": info["complaint_authority"][text],
        "automated": info["automated_decision_making"][text],
    }


def _left_out_name(words: Words, titles: dict[str, dict[str, str]], item: dict[str, str]) -> str:
    """The name of a section or data category a portability package leaves out."""
    if "section" in item:
        return titles.get(item["section"], {}).get(words.text_lang, words.label(item["section"]))
    return words.code("data_category", item["category"]) or item["category"]


@lru_cache
def _environment() -> Environment:
    """The Jinja2 environment of the letter (autoescaped: record data comes from integrations)."""
    return Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "html.j2"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(package: dict[str, Any], *, lang: str, titles: dict[str, dict[str, str]],
           profile: RegisterProfile | None) -> str:
    """The letter of a package in one language."""
    meta, info = package["_meta"], package.get("information")
    time_zone = (info or {}).get("time_zone") or (profile.rights_policy.time_zone if profile else DEFAULT_TIME_ZONE)
    words = Words(lang, profile, time_zone)
    t = LETTER[lang]
    person = package["registrant"]
    fields = _PERSON_FIELDS if person.get("kind") != RegistrantKind.organisation else _ORGANISATION_FIELDS
    # Guardians and children are people: the letter names them (the package keeps their ids and link details).
    person = {**person, **{side: [" ".join(p for p in (link.get("given_name"), link.get("family_name")) if p)
                                  for link in person.get(side) or []] for side in ("guardians", "children")}}
    you = [words.row(k, person.get(k)) for k in fields if person.get(k) not in (None, "", [], {})]
    if received_by := package.get("received_by"):
        you.append(words.row("received_by", received_by.get("name")))
    text_lang = words.text_lang
    tables = [_section(words, titles.get(name, {}).get(text_lang, words.label(name)), rows)
              for name, rows in package["data"].items()]
    if "consultation_log" in package:
        tables.append(_consultations(words, package["consultation_log"]))
    if "change_history" in package:
        tables.append(_history(words, package["change_history"]))
    left_out = [f"{_left_out_name(words, titles, item)}: {t['left_out_reasons'][item['reason']]}"
                for item in package.get("left_out", [])]
    received = meta.get("received_at")
    intro_line = t["request"].format(received=words.value("at", received) if received else "",
                                     generated=words.value("at", meta["generated_at"]))
    return _environment().get_template("letter.html.j2").render(
        lang=lang, t=t, kind=meta["request_type"], intro_line=intro_line, you=you, tables=tables,
        info=_information(words, info) if info else None, left_out=left_out, digest=meta["sha256"])

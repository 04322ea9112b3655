"""The public privacy statement: a document built from the profile, rendered with Jinja2 as HTML or Markdown."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import isodate
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.consents.rules import ELECTRONIC
from app.register.schemas import (
    EU_EEA,
    LegalBasis,
    MarketingChannels,
    Purpose,
    RegisterProfile,
    RegisterVersionRead,
    StatementRead,
    StatementSection,
)
from app.register.texts import TEXTS

LANGUAGES = ("fi", "en")
FORMATS = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8",
           "json": "application/json"}
_TEMPLATES = Path(__file__).with_name("templates")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


@dataclass(frozen=True)
class Rendered:
    """A rendered statement and its media type."""

    content: str
    media_type: str


def _markdown_escape(value: Any) -> str:
    """Backslash-escape what Markdown would read as markup or raw HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))


@lru_cache
def _environment() -> Environment:
    # Autoescape for .html templates: a profile value like "<script>" is shown as text.
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "html.j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md"] = _markdown_escape
    return env


def human_duration(value: str, t: dict[str, Any]) -> str:
    """`P6Y` as "6 vuotta" or "6 years"; the ISO form when it has no simple reading."""
    parsed = isodate.parse_duration(value)
    parts = {"years": getattr(parsed, "years", 0), "months": getattr(parsed, "months", 0)}
    delta = getattr(parsed, "tdelta", parsed)
    weeks, days = divmod(delta.days, 7) if delta.days % 7 == 0 else (0, delta.days)
    parts |= {"weeks": weeks, "days": days, "hours": delta.seconds // 3600}
    if delta.seconds % 3600:
        return value
    words = [f"{int(n)} {t['units'][unit][0 if n == 1 else 1]}" for unit, n in parts.items() if n]
    return " ".join(words) or value


def _controller(p: RegisterProfile, t: dict[str, Any]) -> list[str]:
    c = p.controller
    lines = [c.name, f"{t['business_id']} {c.business_id}"]
    if c.trade_names:
        lines.append(f"{t['also_known_as']}: {', '.join(c.trade_names)}")
    if c.address:
        lines.append(f"{c.address.street}, {c.address.postal_code} {c.address.city}")
    lines += [f"{t[k]}: {getattr(c, k)}" for k in ("phone", "email", "website") if getattr(c, k)]
    return lines


def _contact(p: RegisterProfile, t: dict[str, Any]) -> list[str]:
    c = p.controller.register_contact
    lines = [c.name] if c.name else []
    if c.address:
        lines.append(f"{c.address.street}, {c.address.postal_code} {c.address.city}")
    lines += [f"{t[k]}: {getattr(c, k)}" for k in ("phone", "email") if getattr(c, k)]
    return lines


def _purposes(p: RegisterProfile, t: dict[str, Any], lang: str) -> list[str]:
    items = []
    for purpose in p.purposes:
        text = f"{getattr(purpose.name, lang)}. {t['basis']}: {t['bases'][purpose.legal_basis]}."
        if purpose.description:
            text += f" {getattr(purpose.description, lang)}"
        if purpose.channels:
            text += f" {t['channels_label']}: {', '.join(t['channels'][c] for c in purpose.channels)}."
        if purpose.direct_marketing and purpose.channels:
            text += " " + " ".join(_marketing(purpose, t, p.rights_policy.guardian_age))
        if purpose.legal_basis is LegalBasis.consent:
            text += f" {t['withdrawable']}"  # a consent is withdrawn (Art. 7(3)), not objected to
        elif purpose.objectable:
            text += f" {t['objectable']}"
        if purpose.retired:
            text += f" {t['retired']}"
        items.append(text)
    return items


def marketing_channels(purpose: Purpose) -> MarketingChannels:
    """Which channels of a direct-marketing purpose need consent, take soft opt-in or are opt-out (917/2014 §§ 200-201)."""
    electronic = [c for c in purpose.channels if c.value in ELECTRONIC]
    other = [c for c in purpose.channels if c.value not in ELECTRONIC]
    consent_only = purpose.legal_basis is LegalBasis.consent
    return MarketingChannels(
        consent_required=list(purpose.channels) if consent_only else electronic,
        soft_opt_in=[] if consent_only or not purpose.soft_opt_in else electronic,
        unless_refused=[] if consent_only else other,
        organisations_unless_refused=[] if consent_only else list(purpose.channels))


def _marketing(purpose: Purpose, t: dict[str, Any], guardian_age: int) -> list[str]:
    """The statement's sentences on what each channel of a direct-marketing purpose rests on, and how to refuse."""
    m, rule = t["marketing"], marketing_channels(purpose)

    def names(channels: list[Any]) -> str:
        return ", ".join(t["channels"][c] for c in channels)

    lines = [m["consent"].format(channels=names(rule.consent_required))] if rule.consent_required else []
    if rule.soft_opt_in:
        lines.append(m["soft_opt_in"].format(channels=names(rule.soft_opt_in)))
    if rule.unless_refused:
        lines.append(m["unless_refused"].format(channels=names(rule.unless_refused)))
    if rule.organisations_unless_refused:
        lines.append(m["business"])
    return [*lines, m["children"].format(age=guardian_age), m["refuse"]]


def _categories(p: RegisterProfile, lang: str) -> list[str]:
    return [f"{getattr(c.name, lang)}" + (f": {getattr(c.description, lang)}" if c.description else "")
            for c in p.data_categories]


def _recipient_line(r: Any, t: dict[str, Any], lang: str) -> str:
    return f"{r.name} ({t['roles'][r.role]}, {t['location']} {r.location}): {getattr(r.purpose, lang)}"


def _transfers(p: RegisterProfile, t: dict[str, Any], lang: str) -> list[str]:
    items = []
    for r in p.recipients:
        if r.location in EU_EEA:
            continue
        safeguard = t["safeguards"][r.safeguard]
        line = f"{_recipient_line(r, t, lang).rstrip('.')}. {t['safeguard'].capitalize()}: {safeguard}."
        if r.safeguard_note:
            line += f" {getattr(r.safeguard_note, lang)}"
        items.append(line)
    return items


def _retention(p: RegisterProfile, t: dict[str, Any], lang: str, periods: dict[str, str]) -> list[str]:
    """Each category's period and its start event, in the words of the rule that enforces it (Art. 13(2)(a))."""
    items = []
    for c in p.data_categories:
        line = f"{getattr(c.name, lang)}: {periods.get(c.code) or human_duration(c.retention, t)}"
        if c.statute:
            line += f" ({t['statute']}: {c.statute})"
        items.append(line + ".")
    return items


def _rights(p: RegisterProfile, t: dict[str, Any], lang: str) -> tuple[list[str], list[str]]:
    r, policy = t["rights"], p.rights_policy
    channels = ", ".join(t["request_channels"][c] for c in policy.request_channels)
    paragraphs = [
        f"{r['access']} {r['fee']}",
        r["rectification"], r["erasure"], r["restriction"], r["portability"], r["objection"], r["withdraw"],
        r["deadline"].format(response=human_duration(policy.response_time, t),
                             extension=human_duration(policy.extension, t)),
        f"{r['channels'].format(channels=channels)} {r['any_channel']} {r['identity']}",
        r["guardian"].format(age=policy.guardian_age),
    ]
    if policy.instructions:
        paragraphs.append(getattr(policy.instructions, lang))
    paragraphs.append(r["complaint"])
    # Consent-based purposes are stopped by withdrawing the consent (Art. 7(3)); only the others are objected to.
    objectable = [getattr(x.name, lang) for x in p.purposes
                  if x.objectable and not x.retired and x.legal_basis is not LegalBasis.consent]
    if objectable:
        paragraphs.append(r["objectable"])
    return paragraphs, objectable


def build(version: RegisterVersionRead, *, lang: str, periods: dict[str, str] | None = None) -> StatementRead:
    """The statement of one version of the profile, in one language, as structured data; `periods` gives each
    category's period in words as its retention rule counts it."""
    p, t = version.profile, TEXTS[lang]
    h = t["headings"]
    rights, objectable = _rights(p, t, lang)
    disclosures = [_recipient_line(r, t, lang) for r in p.recipients if r.location in EU_EEA]
    note = [getattr(p.disclosure_note, lang)] if p.disclosure_note else []

    def section(key: str, paragraphs: list[str] | None = None, items: list[str] | None = None) -> StatementSection:
        return StatementSection(key=key, heading=h[key], paragraphs=paragraphs or [], items=items or [])

    subjects = f"{t['data_subjects']}: {', '.join(getattr(s.name, lang) for s in p.data_subjects)}."
    transfers = _transfers(p, t, lang)
    sections = [
        section("controller", _controller(p, t)),
        section("contact", _contact(p, t)),
        section("register", [getattr(p.register_name, lang)]),
        section("purposes", [getattr(p.legal_basis_note, lang)] if p.legal_basis_note else [], _purposes(p, t, lang)),
        section("categories", [subjects], _categories(p, lang)),
        section("sources", items=[getattr(s, lang) for s in p.sources]),
        section("disclosures", note + ([] if disclosures or note else [t["no_disclosures"]]), disclosures),
        section("transfers", [] if transfers else [t["no_transfers"]], transfers),
        section("security", items=[getattr(s, lang) for s in p.security_measures]),
        section("retention", items=_retention(p, t, lang, periods or {})),
        section("rights", rights, objectable),
        section("cookies", [getattr(p.cookies, lang) if p.cookies else t["no_cookies"]]),
    ]
    at = version.created_at
    date = f"{at.day}.{at.month}.{at.year}" if lang == "fi" else at.strftime("%d %B %Y").lstrip("0")
    updated = t["updated"].format(date=date, version=version.number)
    return StatementRead(lang=lang, title=f"{t['title']}: {getattr(p.register_name, lang)}", version=version.number,
                         updated_at=at, law=f"{t['law']} {updated}", sections=sections)


def render(version: RegisterVersionRead, *, lang: str, fmt: str, periods: dict[str, str] | None = None) -> Rendered:
    """The statement in one language and format (html, md or json)."""
    document = build(version, lang=lang, periods=periods)
    if fmt == "json":
        return Rendered(document.model_dump_json(), FORMATS[fmt])
    template = _environment().get_template(f"statement.{fmt}.j2")
    return Rendered(template.render(doc=document), FORMATS[fmt])

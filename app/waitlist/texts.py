"""Notice texts in the registrant's language, split around the unsubscribe token the database fills in."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from urllib.parse import quote
from datetime import datetime
from zoneinfo import ZoneInfo

LANGUAGES = ("fi", "sv", "en")
LOCAL = ZoneInfo("Europe/Helsinki")
TOKEN_MARK = "\x00TOKEN\x00"

_SUBJECT = {"fi": "Vapaa aika: {description}", "sv": "Ledig tid: {description}", "en": "Free slot: {description}"}
_EMAIL = {
    "fi": "{message}\n\nAika: {when}\n{description}\n\nSait tämän viestin, koska olet UniikkiListalla.\n"
          "Poistu listalta yhdellä napsautuksella: {link}\n",
    "sv": "{message}\n\nTid: {when}\n{description}\n\nDu får detta meddelande eftersom du står på UniikkiListan.\n"
          "Lämna listan med ett klick: {link}\n",
    "en": "{message}\n\nWhen: {when}\n{description}\n\nYou receive this because you are on UniikkiLista.\n"
          "Leave the list with one click: {link}\n",
}
_SMS = {
    "fi": "{message} {when} {description}. Poistu listalta: {link}",
    "sv": "{message} {when} {description}. Lämna listan: {link}",
    "en": "{message} {when} {description}. Leave the list: {link}",
}


@dataclass(frozen=True)
class Split:
    """A text before and after the unsubscribe token."""

    before: str
    after: str


@dataclass(frozen=True)
class Notice:
    """Subjects and split bodies per language for one wave of a notification."""

    subject: dict[str, str]
    email: dict[str, Split]
    sms: dict[str, Split]
    link_before: str


def unsubscribe_link(base_url: str, token: str) -> str:
    """The public unsubscribe link of a token."""
    return f"{base_url.rstrip('/')}/v1/waitlist/unsubscribe?token={token}"


def _split(text: str) -> Split:
    """A rendered text cut at the token mark."""
    before, _, after = text.partition(TOKEN_MARK)
    return Split(before, after)


def render(*, base_url: str, message: str, starts_at: datetime, description: str) -> Notice:
    """The texts of a notice in every language, with a hole where each recipient's token goes."""
    when = starts_at.astimezone(LOCAL).strftime("%d.%m.%Y %H:%M")
    link = unsubscribe_link(base_url, TOKEN_MARK)
    values = {"message": message, "when": when, "description": description, "link": link}
    return Notice(
        subject={lang: _SUBJECT[lang].format(description=description)[:300] for lang in LANGUAGES},
        email={lang: _split(_EMAIL[lang].format(**values)) for lang in LANGUAGES},
        sms={lang: _split(_SMS[lang].format(**values)) for lang in LANGUAGES},
        link_before=link.partition(TOKEN_MARK)[0],
    )


_PAGE = """<!doctype html>
<html lang="fi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>UniikkiLista</title></head><body>
<form method="post" action="?token={token}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<p>Poistu UniikkiListalta? · Lämna UniikkiListan? · Leave UniikkiLista?</p>
<button type="submit">Poistu listalta · Lämna listan · Leave the list</button>
</form></body></html>
"""


def unsubscribe_page(token: str) -> str:
    """A page with one button that posts the RFC 8058 one-click form for the token (nothing is looked up)."""
    return _PAGE.format(token=escape(quote(token, safe="")))

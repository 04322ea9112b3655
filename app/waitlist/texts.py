"""Notice texts in the registrant's language, split around the unsubscribe token the database fills in."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from urllib.parse import quote
from datetime import datetime
from zoneinfo import ZoneInfo

from app.register.schemas import RegisterProfile

LANGUAGES = ("fi", "sv", "en")
LOCAL = ZoneInfo("Europe/Helsinki")
TOKEN_MARK = "\x00TOKEN\x00"

_SUBJECT = {"fi": "Vapaa aika: {description}", "sv": "Ledig tid: {description}", "en": "Free slot: {description}"}
_EMAIL = {
    "fi": "{message}\n\nAika: {when}\n{description}\n\nSait tämän viestin, koska olet listalla {list}"
          " ({controller}).\nPoistu listalta yhdellä napsautuksella: {link}\n",
    "sv": "{message}\n\nTid: {when}\n{description}\n\nDu får detta meddelande eftersom du står på listan {list}"
          " ({controller}).\nLämna listan med ett klick: {link}\n",
    "en": "{message}\n\nWhen: {when}\n{description}\n\nYou receive this because you are on {list}"
          " ({controller}).\nLeave the list with one click: {link}\n",
}
_SMS = {
    "fi": "{controller}: {message} {when} {description}. Poistu listalta: {link}",
    "sv": "{controller}: {message} {when} {description}. Lämna listan: {link}",
    "en": "{controller}: {message} {when} {description}. Leave the list: {link}",
}


@dataclass(frozen=True)
class Brand:
    """Whose list it is, from the register profile: the list's name per language and the controller's name."""

    names: dict[str, str]
    controller: str

    @classmethod
    def of(cls, profile: RegisterProfile | None, *, purpose: str) -> Brand:
        """The brand of the loaded profile: its `waitlist_name`, else the waitlist purpose's name."""
        if profile is None:
            return cls(names={lang: "" for lang in LANGUAGES}, controller="")
        if profile.waitlist_name is not None:
            names = profile.waitlist_name.model_dump()
        else:
            found = profile.purpose(purpose)
            name = found.name if found else profile.register_name
            names = {"fi": name.fi, "en": name.en, "sv": name.en}
        return cls(names=names, controller=profile.controller.name)


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


def render(*, base_url: str, message: str, starts_at: datetime, description: str, brand: Brand) -> Notice:
    """The texts of a notice in every language, with a hole where each recipient's token goes."""
    when = starts_at.astimezone(LOCAL).strftime("%d.%m.%Y %H:%M")
    link = unsubscribe_link(base_url, TOKEN_MARK)
    values = {"message": message, "when": when, "description": description, "link": link,
              "controller": brand.controller}
    return Notice(
        subject={lang: _SUBJECT[lang].format(description=description)[:300] for lang in LANGUAGES},
        email={lang: _split(_EMAIL[lang].format(**values, list=brand.names[lang])) for lang in LANGUAGES},
        sms={lang: _split(_SMS[lang].format(**values)) for lang in LANGUAGES},
        link_before=link.partition(TOKEN_MARK)[0],
    )


_PAGE = """<!doctype html>
<html lang="fi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head><body>
<form method="post" action="?token={token}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<p>{question}</p>
<button type="submit">Poistu listalta · Lämna listan · Leave the list</button>
</form></body></html>
"""
_QUESTION = {"fi": "Poistu listalta {list} ({controller})?", "sv": "Lämna listan {list} ({controller})?",
             "en": "Leave {list} ({controller})?"}


def unsubscribe_page(token: str, brand: Brand) -> str:
    """A page with one button that posts the RFC 8058 one-click form for the token (the token is not looked up)."""
    question = " · ".join(_QUESTION[lang].format(list=brand.names[lang], controller=brand.controller)
                          for lang in ("fi", "sv", "en"))
    return _PAGE.format(token=escape(quote(token, safe="")), title=escape(brand.names["fi"]),
                        question=escape(question))

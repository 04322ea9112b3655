"""The one-click opt-out page, in the person's language (fi/sv/en), naming the controller from the profile."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from app.register.schemas import RegisterProfile

_WORDS = {
    "fi": {"title": "Markkinoinnin kielto", "question": "Etkö halua enää viestejä ({what}) rekisterinpitäjältä {who}?",
           "button": "Lopeta viestit", "channels": {"email": "sähköposti", "sms": "tekstiviesti", "phone": "puhelin",
                                                    "post": "kirje"}},
    "sv": {"title": "Avstå från marknadsföring", "question": "Vill du inte längre få meddelanden ({what}) från {who}?",
           "button": "Sluta skicka", "channels": {"email": "e-post", "sms": "sms", "phone": "telefon", "post": "brev"}},
    "en": {"title": "Stop marketing", "question": "Stop messages ({what}) from {who}?",
           "button": "Stop the messages", "channels": {"email": "email", "sms": "text message", "phone": "phone",
                                                       "post": "letter"}},
}

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head><body>
<form method="post" action="?{query}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<p>{question}</p>
<button type="submit">{button}</button>
</form></body></html>
"""


def optout_page(*, profile: RegisterProfile, language: str, token: str, purpose: str, channel: str) -> str:
    """One button that posts the RFC 8058 one-click form for the link (a GET never opts out: scanners follow links)."""
    lang = language if language in _WORDS else "fi"
    words = _WORDS[lang]
    found = profile.purpose(purpose)
    name = getattr(found.name, "en" if lang == "sv" else lang) if found else purpose
    what = f"{name}, {words['channels'].get(channel, channel)}"
    query = urlencode({"purpose": purpose, "channel": channel, "token": token})
    return _PAGE.format(lang=lang, title=escape(words["title"]), query=escape(query),
                        question=escape(words["question"].format(what=what, who=profile.controller.name)),
                        button=escape(words["button"]))

"""Email headers written the way receivers parse them: one-click unsubscribe unfolded, no line breaks smuggled in.

RFC 2369 `List-Unsubscribe` carries `<URL>` and RFC 8058 pairs it with `List-Unsubscribe-Post:
List-Unsubscribe=One-Click`; mail clients offer one-click unsubscribe only when the URL reads as written, so
the message is serialised without folding (RFC 5322 allows 998 octets a line) and never as an RFC 2047
encoded-word, which the default 78-column policy falls back to for a long unbreakable URL.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage

ONE_CLICK = "List-Unsubscribe=One-Click"
# SMTP line endings, 998 octets a line: short headers are written exactly as given.
UNFOLDED = policy.SMTP.clone(max_line_length=998)
_BREAKS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def unsubscribe_headers(url: str) -> dict[str, str]:
    """The RFC 2369 and RFC 8058 headers of a one-click unsubscribe link (an https URL)."""
    if _BREAKS.search(url) or not url.isascii() or any(c in url for c in "<> "):
        raise ValueError("an unsubscribe URL is one ASCII line without spaces or angle brackets")
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK}


def header_value(text: str) -> str:
    """A header value on one line: CR, LF and other control characters become one space."""
    return _BREAKS.sub(" ", text).strip()


def email_bytes(message: EmailMessage) -> bytes:
    """The message as sent over SMTP, headers unfolded."""
    return message.as_bytes(policy=UNFOLDED)

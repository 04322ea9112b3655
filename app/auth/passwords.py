"""Password strength: zxcvbn's estimate, which knows common and breached-pattern passwords, names and keyboards."""

from __future__ import annotations

from zxcvbn import zxcvbn

MIN_SCORE = 3  # "safely unguessable: moderate protection from offline slow-hash scenario"
# zxcvbn's time grows with length; past this a password is long enough that only its head is judged.
_JUDGED_LENGTH = 72


def weakness(password: str, *, user_inputs: list[str]) -> str | None:
    """Why a password is too weak (zxcvbn score below 3), or None when it will do."""
    result = zxcvbn(password[:_JUDGED_LENGTH], user_inputs=[i for i in user_inputs if i])
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    hints = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    reason = " ".join(h.strip() for h in hints if h and h.strip()) or "It is easy to guess."
    return f"the password is too easy to guess (strength {result['score']} of 4, at least {MIN_SCORE} needed). {reason}"

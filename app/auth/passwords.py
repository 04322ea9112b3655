"""Password strength: zxcvbn's estimate, which knows common and breached-pattern passwords, names and keyboards."""

from __future__ import annotations

from zxcvbn import zxcvbn

MIN_SCORE = 3  # "safely unguessable: moderate protection from offline slow-hash scenario"
# zxcvbn's dictionaries are English; these Finnish favourites of password lists are judged as known words too.
FINNISH_COMMON = [
    "salasana", "tunnussana", "kissa", "koira", "perkele", "suomi", "suomi100", "finland", "helsinki", "tampere",
    "turku", "oulu", "rakkaus", "aurinko", "kesä", "talvi", "kevät", "syksy", "joulu", "hyvää", "moikka", "terve",
    "kalle", "pekka", "matti", "mikko", "jussi", "timo", "anna", "maria", "laulu", "laulukoulu", "rekisteri",
    "qwerty", "asdfghjkl", "äöå", "yrityksen", "sauna", "sisu", "mökki", "mummo", "pappa",
]
# zxcvbn's time grows with length; past this a password is long enough that only its head is judged.
_JUDGED_LENGTH = 72


def weakness(password: str, *, user_inputs: list[str]) -> str | None:
    """Why a password is too weak (zxcvbn score below 3), or None when it will do."""
    known = [i for i in user_inputs if i] + FINNISH_COMMON
    result = zxcvbn(password[:_JUDGED_LENGTH], user_inputs=known)
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    hints = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    reason = " ".join(h.strip() for h in hints if h and h.strip()) or "It is easy to guess."
    return f"the password is too easy to guess (strength {result['score']} of 4, at least {MIN_SCORE} needed). {reason}"

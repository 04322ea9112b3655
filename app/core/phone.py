"""Phone numbers: validated with `phonenumbers`, Finnish numbers accepted as people write them, stored E.164."""

from __future__ import annotations

from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, StringConstraints

DEFAULT_REGION = "FI"


def normalise_phone(value: str, *, region: str = DEFAULT_REGION) -> str:
    """The E.164 form of a phone number (`040 581 2799` → `+358405812799`); ValueError if not a valid number."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(value: str) -> str:
    """A phone number safe to log: its last two digits only."""
    return "***" + value[-2:] if len(value) > 2 else "***"


Phone = Annotated[str, StringConstraints(min_length=3, max_length=40), AfterValidator(normalise_phone)]

"""Validators of Finnish identifiers and other values more than one domain checks."""

from __future__ import annotations

import re

_BUSINESS_ID = re.compile(r"^(\d{6,7})-(\d)$")
_BUSINESS_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2)


def business_id_check_digit(digits: str) -> int | None:
    """The check digit of the seven digits of a Y-tunnus, or None if no digit can be valid (remainder 1)."""
    remainder = sum(int(d) * w for d, w in zip(digits, _BUSINESS_ID_WEIGHTS, strict=True)) % 11
    if remainder == 1:
        return None
    return 0 if remainder == 0 else 11 - remainder


def validate_business_id(value: str) -> str:
    """A Finnish business ID (Y-tunnus) `NNNNNNN-C` with a valid check digit; raises ValueError otherwise."""
    match = _BUSINESS_ID.match(value.strip())
    if not match:
        raise ValueError("a Finnish business ID (Y-tunnus) is seven digits, a hyphen and a check digit, e.g. 3286283-6")
    # IDs issued before 1991 may be written with six digits; they take a leading zero.
    digits, check = match.group(1).zfill(7), int(match.group(2))
    if business_id_check_digit(digits) != check:
        raise ValueError(f"the check digit of business ID {value.strip()!r} is wrong")
    return f"{digits}-{check}"

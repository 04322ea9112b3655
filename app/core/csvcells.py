"""CSV that spreadsheets open as data: cells that would start a formula are neutralised (OWASP CSV injection).

Every CSV the service writes goes through `csv_text` (or `neutralise` for a writer of its own), so a name
such as `=HYPERLINK(...)` or `+358 40 …` is shown as text and never evaluated when the file is opened.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

# A spreadsheet treats a cell starting with one of these as a formula (tab and CR as well, per OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain signed number (an E.164 phone, a negative amount) evaluates to itself: it is left as written.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def neutralise(value: Any) -> str:
    """One cell as text: empty for None, and prefixed with `'` when it would start a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A whole CSV document (header row first), every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()

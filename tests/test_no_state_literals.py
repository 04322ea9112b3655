"""No state or kind is compared as a string literal anywhere in app/: they are StrEnum members."""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

from app.auth.principal import PrincipalKind
from app.consents.state import State as ConsentState
from app.outbox.models import Kind as MessageKind
from app.outbox.models import Status as MessageStatus
from app.registrants.models import RegistrantKind, RegistrantStatus
from app.subject_requests.states import RequestAction, RequestStatus, RequestType
from app.waitlist.models import EntryStatus, NotificationStatus

APP = Path(__file__).resolve().parents[1] / "app"
STATE_ENUMS: tuple[type[StrEnum], ...] = (
    RegistrantKind, RegistrantStatus, RequestType, RequestStatus, RequestAction, EntryStatus, NotificationStatus,
    MessageKind, MessageStatus, PrincipalKind, ConsentState)
STATES = {member.value for enum in STATE_ENUMS for member in enum}
# Attributes and keys that hold a state or kind; a literal compared with one of them is what this test forbids.
STATEFUL = {"status", "kind", "type", "action", "from_status", "to_status", "registrant_status", "entry_status",
            "statuses", "expected", "new", "state"}


def _literals(node: ast.AST) -> list[str]:
    """The state strings a node spells out: a constant, or a tuple/list/set of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if node.value in STATES else []
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [value for element in node.elts for value in _literals(element)]
    return []


def _names(node: ast.AST) -> set[str]:
    """Identifiers, attribute names and string subscripts in an expression."""
    found = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.add(child.value)
    return found


def _offences(tree: ast.AST) -> list[tuple[int, str]]:
    """Comparisons (`==`, `!=`, `in`, `.in_()`, `.not_in()`) and assignments (`status="sent"`) of state literals."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            literal = [value for side in sides for value in _literals(side)]
            others = set().union(*(_names(side) for side in sides if not _literals(side)))
            if literal and others & STATEFUL:
                found.append((node.lineno, ast.unparse(node)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("in_", "not_in", "notin_") and _names(node.func.value) & STATEFUL):
            if any(_literals(arg) for arg in node.args):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.keyword) and node.arg in STATEFUL and _literals(node.value):
            found.append((node.value.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Dict):
            found += [(key.lineno, ast.unparse(key) + ": " + ast.unparse(value)) for key, value in zip(node.keys, node.values)
                      if isinstance(key, ast.Constant) and key.value in STATEFUL and _literals(value)]
    return found


def test_no_state_is_compared_as_a_string_literal() -> None:
    offences = [f"{path.relative_to(APP.parent)}:{line}: {code}"
                for path in sorted(APP.rglob("*.py"))
                for line, code in _offences(ast.parse(path.read_text(encoding="utf-8")))]
    assert not offences, "compare with the StrEnum member instead:\n" + "\n".join(offences)


def test_the_check_catches_a_literal() -> None:
    caught = _offences(ast.parse('if row["status"] != "active": pass\nstmt.where(E.c.status.in_(("left", "sent")))'))
    assert [line for line, _ in caught] == [1, 2]


def test_an_enum_comparison_passes() -> None:
    assert not _offences(ast.parse('if row["status"] != RegistrantStatus.active: pass'))

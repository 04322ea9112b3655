"""The layers stay apart: services and repositories know nothing of HTTP, and idempotent POSTs are wired right."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.routing import APIRoute

from app.idempotency.deps import IdempotentRoute, claim_idempotency_key

APP = Path(__file__).resolve().parents[2] / "app"


def _imports(path: Path) -> set[str]:
    """The top-level packages a module imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_services_and_repositories_do_not_import_fastapi() -> None:
    layered = sorted([*APP.glob("*/service.py"), *APP.glob("*/repository.py")])
    assert layered
    assert [str(p.relative_to(APP)) for p in layered if {"fastapi", "starlette"} & _imports(p)] == []


def _routes(routes: list) -> list[APIRoute]:
    """Every API route, including those of included routers."""
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None) or getattr(route, "router", None)
        if inner is not None and hasattr(inner, "routes"):
            found += _routes(inner.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def test_every_idempotent_route_stores_its_reply(app) -> None:
    routes = [r for r in _routes(app.routes) if any(d.dependency is claim_idempotency_key for d in r.dependencies)]
    assert {r.name for r in routes} >= {"create_registrant", "add_record", "record_consent", "file_request",
                                        "transition", "join", "notify"}
    assert [r.name for r in routes if not isinstance(r, IdempotentRoute)] == []

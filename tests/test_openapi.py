"""The committed OpenAPI spec is the app's spec, and documents every operation."""

from __future__ import annotations

import json

import pytest

from app.cli import OPENAPI_PATH, openapi_document

SPEC = json.loads(openapi_document())
OPERATIONS = [(path, method, op) for path, item in SPEC["paths"].items() for method, op in item.items()]


def test_committed_spec_is_current():
    assert OPENAPI_PATH.read_text() == openapi_document(), "run `rekisteri openapi` and commit openapi/openapi.json"


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m, _ in OPERATIONS])
def test_operation_is_documented(path, method, op):
    assert op.get("summary"), "summary"
    assert op.get("description"), "a one-line docstring"
    statuses = set(op["responses"])
    assert any(s.startswith("2") for s in statuses), "a success status"
    secured = op.get("security") != []
    if path.startswith("/v1/") and secured:
        assert {"401", "403"} <= statuses, "auth error responses"
    if op.get("requestBody") or any(p["in"] == "query" for p in op.get("parameters", [])):
        assert "422" in statuses, "validation error response"

"""Every request schema uses the shared input types (app/core/types.py): no bare text, time, date or JSON."""

from __future__ import annotations

import typing
from datetime import date, datetime
from typing import Annotated, Any, get_args, get_origin

import pytest
from pydantic import AfterValidator

import app.main  # noqa: F401 - imports every domain's schemas
from app.core.phone import normalise_phone
from app.core.schemas import RequestModel
from app.core.types import SHARED_CHECKS, check_day, check_instant, check_json
from app.core.validators import validate_business_id

# Validators that rebuild the value from a strict grammar, so nothing else can pass through them.
NORMALISING = {normalise_phone, validate_business_id}


def _models() -> list[type[RequestModel]]:
    found, todo = [], list(RequestModel.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return sorted(set(found), key=lambda m: f"{m.__module__}.{m.__qualname__}")


def _checks(metadata: list[Any]) -> set[Any]:
    return {m.func for m in metadata if isinstance(m, AfterValidator)}


def _problems(annotation: Any, metadata: list[Any], where: str) -> list[str]:
    """What in one annotation is a bare type that should have been a shared one."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        return _problems(inner, [*metadata, *extra], where)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return [p for arg in get_args(annotation) for p in _problems(arg, metadata, where)]
    if origin in (list, tuple, set, frozenset):
        return [p for arg in get_args(annotation) if arg is not Ellipsis for p in _problems(arg, [], where)]
    checks = _checks(metadata)
    if annotation is str and not checks & (SHARED_CHECKS | NORMALISING):
        return [f"{where}: text without a shared type (line/name/text)"]
    if annotation is datetime and check_instant not in checks:
        return [f"{where}: a time that is not Instant"]
    if annotation is date and check_day not in checks:
        return [f"{where}: a date that is not Day"]
    if (annotation is Any or origin is dict) and check_json not in checks:
        return [f"{where}: free JSON that is not JsonObject/JsonValue"]
    return []


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__qualname__)
def test_request_schema_uses_shared_types(model: type[RequestModel]) -> None:
    problems = []
    for name, field in model.model_fields.items():
        problems += _problems(field.annotation, list(field.metadata), f"{model.__qualname__}.{name}")
    assert not problems, problems

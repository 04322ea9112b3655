"""The lean `GET /v1/registrants`: a plain lookup (`email`, `phone`, `ref`, `limit`, each at most once) answered before
FastAPI's routing (app/core/lean.py), exactly as `router.list_registrants` answers it.

The same checks in the same terms: the bearer token verified and its subject admitted by the per-process cache
(`auth.service.cached_principal`, the rules of `principal_for_token`), the `registrants:read` scope, each parameter
within the route's limits and refused characters; the same service statement and audit entry
(`service.lookup_registrants`), the same JSON. Anything it does not answer exactly (another parameter, a cursor, a
value the route would refuse, a subject not cached, SQLite or inline sealing) goes on to the route.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import Scope

from app.auth import service as auth_service
from app.auth.principal import Principal
from app.auth.roles import Scope as AuthScope
from app.core.config import Settings
from app.core.context import set_principal_id
from app.core.lean import first_header
from app.core.phone import normalise_phone
from app.core.types import check_line
from app.db.pagination import read_params
from app.registrants import service
from app.registrants.repository import RegistrantFilter
from app.registrants.router import PAGE_JSON

# The route's `max_length` of each filter it takes here (app/registrants/router.py, registrant_filter).
_MAX_LENGTH = {"email": 254, "phone": 40, "ref": 270}
_PARAMETERS = {*_MAX_LENGTH, "limit"}
_LIMIT = re.compile(r"[1-9][0-9]{0,8}")  # what the route reads as the same int (no sign, zeros or spaces)


async def lookup(scope: Scope, state: State) -> Response | None:
    """The page `GET /v1/registrants` answers to a plain lookup, or None to leave the request to the route."""
    settings: Settings = state.settings
    database = state.db
    if settings.audit_seals_inline or database.engine.dialect.name != "postgresql":
        return None
    query = _query(scope["query_string"])
    filters = _filters(query) if query is not None else None
    reader = _reader(scope, settings) if filters is not None else None
    if query is None or filters is None or reader is None:
        return None
    limit = query.get("limit")
    params = read_params(int(limit) if limit else None, None, default=settings.page_limit_default,
                         cap=settings.page_limit_max)
    set_principal_id(reader.subject)
    page = await service.lookup_registrants(database, actor=reader, filters=filters, params=params,
                                            async_commit=settings.audit_read_commit == "async")
    if page is None:
        return None
    return Response(PAGE_JSON.dump_json(page, by_alias=True), media_type="application/json")


def _query(raw: bytes) -> dict[str, str] | None:
    """The query parameters as Starlette parses them, when each is one this route takes here, given once."""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    query = dict(pairs)
    if len(query) != len(pairs) or not query.keys() <= _PARAMETERS:
        return None
    return query


def _filters(query: dict[str, str]) -> RegistrantFilter | None:
    """The filter the route's `registrant_filter` makes of these values, or None where it would refuse one."""
    for name, most in _MAX_LENGTH.items():
        value = query.get(name)
        if value is not None:
            try:
                check_line(value)
            except ValueError:
                return None
            if len(value) > most:
                return None
    limit = query.get("limit")
    if limit is not None and not _LIMIT.fullmatch(limit):
        return None
    phone, ref = query.get("phone"), query.get("ref")
    if phone is not None:
        try:
            phone = normalise_phone(phone)
        except ValueError:
            return None
    system, sep, external_id = (ref or "").partition(":")
    if ref is not None and not (sep and system and external_id):
        return None
    return RegistrantFilter(email=query.get("email"), phone=phone, ref=(system, external_id) if ref else None)


def _reader(scope: Scope, settings: Settings) -> Principal | None:
    """The caller, when its bearer token is valid, its subject cached and admitted, and it may read registrants."""
    scheme, _, token = (first_header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    admitted = auth_service.cached_principal(settings, token=token.strip())
    if admitted is None:
        return None
    principal, password_change_only = admitted
    if password_change_only or not principal.has(AuthScope.registrants_read):
        return None
    return principal

"""The lean `GET /v1/registrants`: a plain lookup (`email`, `phone`, `ref`, `limit`, each at most once) answered before
FastAPI's routing (app/core/lean.py), exactly as `router.list_registrants` answers it; and the lean
`PUT /v1/registrants/by-ref/{system}/{external_id}` (`upsert`), exactly as `router.upsert_by_ref` answers it.

The same checks in the same terms: the bearer token verified and its subject admitted by the per-process cache
(`auth.service.cached_principal`, the rules of `principal_for_token`), the `registrants:read` scope, each parameter
within the route's limits and refused characters; the same service statement and audit entry
(`service.lookup_registrants`), the same JSON. Anything it does not answer exactly (another parameter, a cursor, a
value the route would refuse, a subject not cached, SQLite or inline sealing) goes on to the route.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from pydantic import TypeAdapter, ValidationError

from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import Scope

from app.auth import service as auth_service
from app.auth.principal import Principal
from app.auth.roles import Scope as AuthScope
from app.core.config import Settings
from app.core.context import set_principal_id
from app.core.errors import DomainError
from app.core.lean import LeanPrefix, first_header
from app.core.phone import normalise_phone
from app.core.types import check_line
from app.db.pagination import read_params
from app.registrants import service
from app.registrants.repository import RegistrantFilter
from app.registrants.router import PAGE_JSON
from app.registrants.schemas import RegistrantRead, RegistrantUpsert

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
    reader = await _reader(scope, settings) if filters is not None else None
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


async def _reader(scope: Scope, settings: Settings,
                  needed: AuthScope = AuthScope.registrants_read) -> Principal | None:
    """The caller, when its bearer token is valid, its subject cached and admitted, and its token has `needed`."""
    scheme, _, token = (first_header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    admitted = (auth_service.cached_principal(settings, token=token.strip())
                or await auth_service.principal_after_read(settings, token=token.strip()))
    if admitted is None:
        return None
    principal, password_change_only = admitted
    if password_change_only or not principal.has(needed):
        return None
    return principal


# --- PUT /v1/registrants/by-ref/{system}/{external_id} ------------------------------------------------------------

_BY_REF = "/v1/registrants/by-ref/"
_SYSTEM = re.compile(r"[a-z][a-z0-9_-]{0,63}")  # the route's pattern of `system`
_READ_JSON = TypeAdapter(RegistrantRead)


async def upsert(scope: Scope, state: State, body: bytes) -> Response | None:
    """The registrant `PUT .../by-ref/{system}/{external_id}` answers, or None to leave the request to the route.

    It answers only what the route would answer 200 or 201 to: any value the route refuses, a body that is not one
    JSON object of the schema, an If-Match it cannot read, a caller not cached, and any refusal of the service
    (which writes nothing before it refuses) go to the route, which answers them.
    """
    settings: Settings = state.settings
    database = state.db
    if settings.audit_seals_inline or database.engine.dialect.name != "postgresql":
        return None
    path = _path(scope["path"])
    if path is None or scope["query_string"]:  # it takes no query (and a token there is refused)
        return None
    if_match = first_header(scope, b"if-match")
    data = _upsert_body(scope, body)
    writer = await _reader(scope, settings, AuthScope.registrants_write)
    if data is None or writer is None or (if_match is not None and not _readable_if_match(if_match)):
        return None
    set_principal_id(writer.subject)
    async with database.sessionmaker() as session:
        try:
            registrant, created = await service.upsert_by_ref(
                session, actor=writer, system=path[0], external_id=path[1], data=data, if_match=if_match,
                ref_keys=settings.erasure_key_list())
            await session.commit()
        except DomainError:
            await session.rollback()
            return None  # nothing was written: the route answers the refusal
        except BaseException:
            await session.rollback()
            raise
    return Response(_READ_JSON.dump_json(registrant, by_alias=True), status_code=201 if created else 200,
                    headers={"ETag": service.etag(registrant.version)}, media_type="application/json")


UPSERT = LeanPrefix("PUT", _BY_REF, "/v1/registrants/by-ref/{system}/{external_id}", upsert)


def _path(path: str) -> tuple[str, str] | None:
    """`system` and `external_id` as the route takes them (each one path segment), or None where it refuses one."""
    system, sep, external_id = path[len(_BY_REF):].partition("/")
    if not sep or not external_id or "/" in external_id or not _SYSTEM.fullmatch(system) or len(external_id) > 200:
        return None
    try:
        check_line(system)
        check_line(external_id)
    except ValueError:
        return None
    return system, external_id


def _upsert_body(scope: Scope, body: bytes) -> RegistrantUpsert | None:
    """The body as the route reads it (JSON, then the schema), or None where it would refuse it."""
    ctype = (first_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/json" or not body:
        return None
    try:
        return RegistrantUpsert.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        return None


def _readable_if_match(value: str) -> bool:
    """Whether the route takes this If-Match (its length) and it names a version or `*`."""
    if len(value) > 100:
        return False
    try:
        service.parse_if_match(value)
    except DomainError:
        return False
    return True

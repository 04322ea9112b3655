"""Rules of data-subject requests: filing, deadlines, the free interval, the lifecycle, packages, callbacks."""

from __future__ import annotations

import hashlib
import secrets
import statistics
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principal import Principal, PrincipalKind
from app.auth.roles import Role
from app.core import clock
from app.core import humanize
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from app.db.pagination import Page, PageParams, make_page
from app.outbox import service as outbox
from app.outbox.models import Kind as MessageKind
from app.outbox.transports import mask_email, mask_phone
from app.outbox.urls import validate_callback_url
from app.register import service as register
from app.register.schemas import RegisterProfile
from app.registrants import erasure, guardians, recipients
from app.registrants import repository as registrants_repo
from app.registrants import service as registrants
from app.registrants import repository as registrants_repo
from app.registrants.models import RegistrantKind, RegistrantStatus
from app.registrants.repository import Visibility
from app.subject_requests import package as packaging
from app.subject_requests import repository as repo
from app.subject_requests import deadlines
from app.subject_requests.deadlines import LocalCalendar, add_months
from app.subject_requests.repository import RequestFilter
from app.subject_requests.schemas import (
    AuthorityBasis,
    CompleteAction,
    ConfirmationRead,
    ExtendAction,
    LinkAction,
    RejectAction,
    RequestCreate,
    RequestCreated,
    RequestDetail,
    RequestRead,
    RequestStats,
    SendConfirmationAction,
    StartAction,
    Transition,
    VerifyAction,
    LiftRestrictionAction,
    OnBehalf,
    WithdrawAction,
)
from app.subject_requests.states import (
    OPEN_STATUSES,
    PACKAGE_TYPES,
    TRANSITIONS,
    RequestAction,
    RequestStatus,
    RequestType,
)
from app.subject_requests.texts import CONFIRMATION, TEXTS

_NOT_FOUND = "no such request"
# A script may file, follow and withdraw its requests; verifying identity and answering stay with named persons.
AUTOMATION_ACTIONS = (RequestAction.withdraw,)
EXPORT_FORMATS = {"json": "application/json", "html": "text/html; charset=utf-8", "zip": "application/zip"}


if TYPE_CHECKING:
    from app.wiring import Wiring

# --- completion handlers (issue 8 adds rectification, erasure, restriction and objection) --------

@dataclass(frozen=True)
class CompletionContext:
    """What a completion handler gets: the request as locked, the action, the profile in force, and now."""

    actor: Principal
    request: RowMapping
    action: CompleteAction
    profile: RegisterProfile
    profile_version: int
    now: datetime
    settings: Settings
    wiring: Wiring


CompletionHandler = Callable[[AsyncSession, CompletionContext], Awaitable[dict[str, Any] | None]]
async def _freeze_package(session: AsyncSession, ctx: CompletionContext) -> dict[str, Any]:
    """Build the access or portability package and store it, frozen, with the request."""
    built = await packaging.build(session, request=ctx.request, profile=ctx.profile,
                                  profile_version=ctx.profile_version, now=ctx.now,
                                  sections=ctx.wiring.package_sections, rules=ctx.wiring.retention_rules)
    await repo.save_package(session, values={
        "request_id": ctx.request["id"], "format_version": packaging.FORMAT_VERSION, "generated_at": ctx.now,
        "sha256": built.sha256, "language": built.language, "content": built.content})
    return {"package": {"sha256": built.sha256, "format_version": packaging.FORMAT_VERSION,
                        "bytes": len(built.content)}}


FREEZE_PACKAGE = _freeze_package


async def callback_secret(session: AsyncSession, rest: str) -> str | None:
    """The signing secret of `request:<id>` callbacks."""
    try:
        request_id = uuid.UUID(rest)
    except ValueError:
        return None
    return await repo.callback_secret(session, request_id=request_id)



# --- helpers --------------------------------------------------------------------------------

def _creator(actor: Principal) -> str | None:
    """Automation clients see only the requests they filed; everyone else with the scope sees all."""
    return actor.subject if actor.role == Role.automation else None


def allowed_actions(row: RowMapping | dict[str, Any], now: datetime) -> list[RequestAction]:
    """The actions the request's status allows now (extension only once and before the deadline)."""
    actions = list(TRANSITIONS[row["status"]])
    restricting = row["type"] == RequestType.restriction and not (row["outcome"] or {}).get("restriction_lifted")
    if RequestAction.lift_restriction in actions and not restricting:
        actions.remove(RequestAction.lift_restriction)
    if RequestAction.extend in actions and (row["extended_at"] is not None or now >= row["due_at"]):
        actions.remove(RequestAction.extend)
    return actions


def flags(row: RowMapping | dict[str, Any]) -> list[str]:
    """What staff should look at: an unadvertised channel, a repeat inside the interval, a duplicate."""
    out = [] if row["channel_advertised"] else ["unadvertised_channel"]
    if row["previous_request_id"] is not None:
        out.append("repeat_within_interval")
    if row["duplicate_of"] is not None:
        out.append("duplicate")
    return out


def _read(row: RowMapping | dict[str, Any], now: datetime, cal: LocalCalendar) -> RequestRead:
    """A request row as the response body, with `overdue`, flags and the allowed actions derived now."""
    data = dict(row)
    data["overdue"] = data["status"] in OPEN_STATUSES and now > data["due_at"]
    data["allowed_actions"] = allowed_actions(row, now)
    data["due_on"], data["time_zone"], data["flags"] = cal.day_of(row["due_at"]), cal.time_zone, flags(row)
    return RequestRead.model_validate(data)


def calendar_of(profile: RegisterProfile | None) -> LocalCalendar:
    """The calendar deadlines are counted on: the profile's time zone and public holidays (1182/71 Art. 2)."""
    if profile is None:
        return LocalCalendar()
    return LocalCalendar(time_zone=profile.rights_policy.time_zone, country=profile.rights_policy.holidays)


async def _calendar(session: AsyncSession) -> LocalCalendar:
    """The calendar of the profile in force."""
    return calendar_of(await register.current_profile(session))


def _aware(value: datetime, loc: list[str | int]) -> datetime:
    """The time if it carries a UTC offset; 422 naming `loc` if it is naive."""
    if value.tzinfo is None:
        raise Invalid("a time needs its UTC offset (RFC 3339)", loc=loc)
    return value


async def _profile(session: AsyncSession) -> tuple[int, RegisterProfile]:
    """The number and profile of the version in force; 409 before the first is written."""
    current = await register.current_version(session)
    if current is None:
        raise Conflict("no register profile has been written yet: PUT /v1/register")
    return current


async def _visible(session: AsyncSession, actor: Principal, request_id: uuid.UUID, *,
                   for_update: bool = False) -> RowMapping:
    """The request row if the caller may see it (automation clients: their own); 404 otherwise."""
    row = await repo.get(session, request_id=request_id, creator=_creator(actor), for_update=for_update)
    if row is None:
        raise NotFound(_NOT_FOUND)
    return row


def _audit(session: AsyncSession, actor: Principal, action: str, row: RowMapping | dict[str, Any],
           **details: Any) -> None:
    """Audit an action on a request, naming its registrant when linked."""
    ids = [row["registrant_id"]] if row["registrant_id"] else []
    audit.record(session, actor=actor, action=action, resource_type="subject_request", resource_id=row["id"],
                 registrant_ids=ids, details=details or None)


async def _flags(session: AsyncSession, *, request_id: uuid.UUID, registrant_id: uuid.UUID | None, type_: str,
                 received_at: datetime, profile: RegisterProfile) -> dict[str, Any]:
    """Duplicate and repeat flags of a request about a registrant; a repeat is flagged, never charged for
    that alone (Art. 12(5), 15(3); CJEU C-307/22)."""
    found: dict[str, Any] = {"duplicate_of": None, "previous_request_id": None}
    if registrant_id is None:
        return found
    found["duplicate_of"] = await repo.first_open_of(session, registrant_id=registrant_id, type_=type_,
                                                     exclude=request_id)
    months = profile.rights_policy.free_access_interval_months
    if type_ == RequestType.access and months:
        found["previous_request_id"] = await repo.last_completed_access(
            session, registrant_id=registrant_id, exclude=request_id, since=add_months(received_at, -months))
    return found


async def _registrant_id(session: AsyncSession, actor: Principal, registrant_id: uuid.UUID,
                         loc: list[str | int]) -> uuid.UUID:
    """The id of a registrant the caller may see; 404 naming `loc` otherwise."""
    try:
        row = await registrants.visible_registrant(session, actor=actor, registrant_id=registrant_id)
    except NotFound as exc:
        raise NotFound("no such registrant", errors=[{"loc": loc, "msg": "no such registrant"}]) from exc
    return row["id"]


# Laki lapsen huollosta (361/1983) § 4 and GDPR recital 38: a guardian uses a child's rights until 18 (by custody,
# with the link recorded in the register as its proof); from 15 a child may also use their own (the controller's
# rule, after the Data Protection Ombudsman's guidance that a child who understands the matter may act alone).
GUARDIAN_MAY_FILE = frozenset({RequestType.access, RequestType.rectification, RequestType.erasure,
                               RequestType.objection})
OWN_REQUEST_AGE = 15


async def _check_who_acts(session: AsyncSession, *, type_: str, on_behalf: str, authority: dict[str, Any] | None,
                          registrant_id: uuid.UUID | None, loc: list[str | int]) -> None:
    """For a child: a guardian files only with a proved link and for the types a guardian may; the child alone
    only from 15. 422 naming what is missing."""
    if registrant_id is None:
        return
    person = await registrants_repo.get(session, registrant_id=registrant_id, visibility=Visibility())
    if person is None or person["kind"] != RegistrantKind.person:
        return
    age = guardians.age_today(person["date_of_birth"])
    custody = on_behalf == OnBehalf.guardian and (authority or {}).get("basis") == AuthorityBasis.custody
    if custody:
        if age is None or age >= guardians.MAJORITY:
            raise Invalid(f"a guardian (custody) acts only for a child under {guardians.MAJORITY}; this person is "
                          + ("of unknown age" if age is None else "of full age"), loc=loc)
        if type_ not in GUARDIAN_MAY_FILE:
            allowed = ", ".join(sorted(t.value for t in GUARDIAN_MAY_FILE))
            raise Invalid(f"a guardian may file {allowed} for a child", loc=["body", "type"])
        linked = await registrants_repo.guardian_ids(session, child_id=registrant_id)
        named = (authority or {}).get("registrant_id")
        if named is None or uuid.UUID(str(named)) not in linked:
            raise Invalid("the guardian must be a guardian linked to the child in the register (the link is the "
                          "proof of custody): name them in authority.registrant_id",
                          loc=["body", "authority", "registrant_id"])
    elif on_behalf == OnBehalf.self and age is not None and age < OWN_REQUEST_AGE:
        raise Invalid(f"a child under {OWN_REQUEST_AGE} uses their rights through a guardian (on_behalf: guardian)",
                      loc=["body", "on_behalf"])


def _check_content(data: RequestCreate, profile: RegisterProfile) -> None:
    """Changes only for rectification (naming editable fields), purposes only for objection (known ones)."""
    if data.type == RequestType.rectification:
        if not data.changes:
            raise Invalid("a rectification request names at least one change", loc=["body", "changes"])
        for i, change in enumerate(data.changes):
            if change.field not in registrants.EDITABLE_FIELDS:
                raise Invalid(f"unknown field {change.field!r}; correctable: {', '.join(registrants.EDITABLE_FIELDS)}",
                              loc=["body", "changes", i, "field"])
    elif data.changes:
        raise Invalid("only a rectification request names changes", loc=["body", "changes"])
    if data.type == RequestType.objection:
        if not data.purposes:
            raise Invalid("an objection names at least one purpose", loc=["body", "purposes"])
        for i, code in enumerate(data.purposes):
            if profile.purpose(code) is None:
                raise Invalid(f"unknown purpose {code!r}: the register profile does not define it",
                              loc=["body", "purposes", i])
    elif data.purposes:
        raise Invalid("only an objection names purposes", loc=["body", "purposes"])


# --- filing and reading ---------------------------------------------------------------------

async def file_request(session: AsyncSession, *, actor: Principal, data: RequestCreate,
                       allowlist: list[str]) -> RequestCreated:
    """File a request: check it, set its deadline and flags, and return it with its callback secret."""
    _, profile = await _profile(session)
    now = clock.utcnow()
    received_at = _aware(data.received_at, ["body", "received_at"]) if data.received_at else now
    if received_at > now:
        raise Invalid("the received time is in the future", loc=["body", "received_at"])
    _check_content(data, profile)
    authority = await _authority(session, actor, data)
    url, secret = None, None
    if data.status_callback_url is not None:
        url = await validate_callback_url(data.status_callback_url, allowlist=allowlist,
                                          loc=["body", "status_callback_url"])
        secret = secrets.token_urlsafe(32)
    registrant_id = None
    if data.registrant_id is not None:
        registrant_id = await _registrant_id(session, actor, data.registrant_id, ["body", "registrant_id"])
    await _check_who_acts(session, type_=data.type, on_behalf=data.on_behalf, authority=authority,
                          registrant_id=registrant_id, loc=["body", "on_behalf"])
    request_id = uuid.uuid4()
    cal = calendar_of(profile)
    due = deadlines.due(received_at, profile.rights_policy.response_time, cal).at
    values = {
        "id": request_id, "type": data.type, "status": RequestStatus.received, "registrant_id": registrant_id,
        "requester": data.requester.model_dump(mode="json", exclude_none=True), "on_behalf": data.on_behalf.value,
        "authority": authority, "received_at": received_at, "channel": data.channel.value,
        # Every channel is accepted (Art. 12(2)); one the statement does not advertise is flagged for staff.
        "channel_advertised": data.channel in profile.rights_policy.request_channels,
        "recipients_requested": data.recipients_requested, "signed": data.signed, "details": data.details,
        "changes": [c.model_dump(mode="json") for c in data.changes], "purposes": list(data.purposes),
        "due_at": due, "original_due_at": due, "status_callback_url": url, "callback_secret": secret,
        "created_by": actor.subject, "created_at": now, "updated_at": now,
        **await _flags(session, request_id=request_id, registrant_id=registrant_id, type_=data.type.value,
                       received_at=received_at, profile=profile),
    }
    await repo.insert_request(session, values=values)
    await repo.add_event(session, values={"request_id": request_id, "at": now, "action": RequestAction.file, "from_status": None,
                                          "to_status": RequestStatus.received, "actor": actor.subject,
                                          "actor_name": actor.name, "details": {}})
    _audit(session, actor, "request.create", values, type=data.type.value)
    row = await repo.get(session, request_id=request_id, creator=None)
    assert row is not None
    return RequestCreated.model_validate({**_read(row, now, cal).model_dump(), "callback_secret": secret})


async def _authority(session: AsyncSession, actor: Principal, data: RequestCreate) -> dict[str, Any] | None:
    """Who acts for the person and on what authority: required for a guardian or representative, else none."""
    if data.on_behalf == "self":
        if data.authority is not None:
            raise Invalid("a person acting for themselves has no authority to record", loc=["body", "authority"])
        return None
    if data.authority is None:
        raise Invalid(f"a request made as {data.on_behalf.value} records who acts and on what authority",
                      loc=["body", "authority"])
    if data.authority.registrant_id is not None:
        await _registrant_id(session, actor, data.authority.registrant_id, ["body", "authority", "registrant_id"])
    return data.authority.model_dump(mode="json", exclude_none=True)


async def get_request(session: AsyncSession, *, actor: Principal, request_id: uuid.UUID) -> RequestDetail:
    """One request the caller may see, with its transition log; the read is audited."""
    row = await _visible(session, actor, request_id)
    events = await repo.events_of(session, request_id=request_id)
    told = await recipients.acknowledgements(session, notices=(row["outcome"] or {}).get("recipients", []))
    _audit(session, actor, "request.read", row)
    cal = await _calendar(session)
    return RequestDetail.model_validate({**_read(row, clock.utcnow(), cal).model_dump(), "events": events,
                                         "recipients": told})


async def list_requests(session: AsyncSession, *, actor: Principal, filters: RequestFilter,
                        params: PageParams) -> Page[RequestRead]:
    """A page of the requests the caller may see, in order of receipt; the read is audited."""
    now = clock.utcnow()
    cal = await _calendar(session)
    rows = await repo.find(session, filters=filters, creator=_creator(actor), now=now, params=params)
    page = make_page(rows, params, keyset=repo.REQUESTS_KEYSET,
                     convert=lambda r: _read(r, now, cal))
    audit.record(session, actor=actor, action="request.list", resource_type="subject_request",
                 registrant_ids=[r.registrant_id for r in page.items if r.registrant_id],
                 details={"count": len(page.items)})
    return page


# --- transitions ----------------------------------------------------------------------------

@dataclass
class _Step:
    """What one action changes: column values and what the transition log records."""

    values: dict[str, Any]
    details: dict[str, Any]


async def _link(session: AsyncSession, actor: Principal, row: RowMapping, registrant_id: uuid.UUID,
                profile: RegisterProfile) -> dict[str, Any]:
    """Link a registrant and recompute the duplicate and free-interval flags."""
    linked = await _registrant_id(session, actor, registrant_id, ["body", "registrant_id"])
    await _check_who_acts(session, type_=row["type"], on_behalf=row["on_behalf"], authority=row["authority"],
                          registrant_id=linked, loc=["body", "registrant_id"])
    flags = await _flags(session, request_id=row["id"], registrant_id=linked, type_=row["type"],
                         received_at=row["received_at"], profile=profile)
    return {"registrant_id": linked, **flags}


# How long a known-contact confirmation link works.
CONFIRMATION_VALID = timedelta(hours=72)


async def _send_confirmation(session: AsyncSession, actor: Principal, row: RowMapping,
                             body: SendConfirmationAction, profile: RegisterProfile, now: datetime,
                             settings: Settings) -> _Step:
    """Send a one-time, expiring link through the outbox to an email or phone already in the register
    (`known_contact`, a proportionate check per EDPB Guidelines 01/2022); only its digest is kept."""
    _accepted_method(row, "known_contact", profile)
    values: dict[str, Any] = {}
    if body.registrant_id is not None:
        values = await _link(session, actor, row, body.registrant_id, profile)
    registrant_id = values.get("registrant_id", row["registrant_id"])
    if registrant_id is None:
        raise Conflict("link the registrant first: the link goes only to a contact already in the register",
                       extra={"allowed_actions": allowed_actions(row, now)})
    person = await registrants.visible_registrant(session, actor=actor, registrant_id=registrant_id)
    address = person["email"] if body.to == "email" else person["phone"]
    if not address or person["status"] == RegistrantStatus.erased:
        raise Conflict(f"the register has no {body.to} for this person; verify by another accepted method",
                       extra={"accepted_methods": [m.value for m in profile.rights_policy.methods_for(row["type"])]})
    token = secrets.token_urlsafe(32)
    expires = now + CONFIRMATION_VALID
    sent_to = mask_email(address) if body.to == "email" else mask_phone(address)
    await repo.add_confirmation(session, values={
        "request_id": row["id"], "token_sha256": hashlib.sha256(token.encode()).hexdigest(), "channel": body.to,
        "sent_to": sent_to, "created_at": now, "expires_at": expires, "created_by": actor.subject})
    lang = person["language"] if person["language"] in humanize.LANGUAGES else "fi"
    words = CONFIRMATION[lang]
    fill = {"register": getattr(profile.register_name, "en" if lang == "en" else "fi"),
            "link": f"{settings.public_base_url.rstrip('/')}/v1/requests/confirmations/{token}",
            "expires": humanize.format_datetime(expires, lang, time_zone=profile.rights_policy.time_zone)}
    payload = ({"to": address, "subject": words["subject"], "text": words["text"].format(**fill)}
               if body.to == "email" else {"to": address, "text": words["sms"].format(**fill)})
    await outbox.enqueue(session, kind=body.to if body.to == "email" else "sms", payload=payload,
                         ref_type="request.confirmation", ref_id=row["id"], registrant_id=registrant_id)
    return _Step(values, {"to": body.to, "sent_to": sent_to, "expires_at": expires.isoformat()})


async def confirm(session: AsyncSession, *, token: str) -> ConfirmationRead:
    """The person follows the link: the request is verified by `known_contact`. An unknown, used or expired
    link gets the same 404, so a link says nothing about requests it does not open."""
    now = clock.utcnow()
    spent = await repo.use_confirmation(session, token_sha256=hashlib.sha256(token.encode()).hexdigest(), now=now)
    row = await repo.get(session, request_id=spent["request_id"], creator=None, for_update=True) if spent else None
    if spent is None or row is None or row["status"] != RequestStatus.received:
        raise NotFound("no such confirmation link (it may have been used or have expired)")
    person = Principal(kind=PrincipalKind.registrant, id=row["registrant_id"], name=None, role=None)
    evidence = {"channel": spent["channel"], "sent_to": spent["sent_to"], "confirmation_id": str(spent["id"]),
                "sent_at": spent["created_at"].isoformat()}
    verification = {"method": "known_contact", "evidence_ref": None, "evidence": evidence, "by": person.subject,
                    "by_name": None, "at": now.isoformat()}
    await repo.update_request(session, request_id=row["id"], values={
        "status": RequestStatus.verified, "verification": verification, "verified_at": now, "updated_at": now})
    await repo.add_event(session, values={"request_id": row["id"], "at": now, "action": RequestAction.confirm,
                                          "from_status": RequestStatus.received, "to_status": RequestStatus.verified,
                                          "actor": person.subject, "actor_name": None,
                                          "details": {"method": "known_contact", "evidence": evidence}})
    updated = await repo.get(session, request_id=row["id"], creator=None)
    assert updated is not None
    _audit(session, person, "request.confirm", updated, method="known_contact", channel=spent["channel"])
    if updated["status_callback_url"]:
        await _notify(session, updated, previous="received", action=RequestAction.confirm, now=now)
    return ConfirmationRead(confirmed=True, request_id=row["id"], status=RequestStatus.verified)


def _accepted_method(row: RowMapping, method: str, profile: RegisterProfile) -> None:
    """409 naming the accepted methods when the profile does not accept `method` for the request's type."""
    accepted = [m.value for m in profile.rights_policy.methods_for(row["type"])]
    if method not in accepted:
        raise Conflict(f"the register profile does not accept {method} for {row['type']} requests; accepted: "
                       f"{', '.join(accepted)}", extra={"accepted_methods": accepted})


def _evidence(row: RowMapping, body: VerifyAction) -> dict[str, Any]:
    """The evidence each method needs, proportionate and without document numbers (EDPB Guidelines 01/2022)."""
    method = body.method.value
    if method == "known_contact":
        raise Invalid("known_contact is confirmed by the person following the link: use send_confirmation",
                      loc=["body", "method"])
    if method == "strong_electronic_identification" and body.evidence_ref is None:
        raise Invalid("give the reference of the e-ID transaction", loc=["body", "evidence_ref"])
    if method == "signed_letter" and not (row["channel"] == "letter" and row["signed"]):
        raise Invalid("the request is not a signed letter", loc=["body", "method"])
    if method == "in_person":
        if body.document_type is None:
            raise Invalid("record the type of the document shown (never its number)", loc=["body", "document_type"])
        if body.evidence_ref is not None:
            raise Invalid("an identity document's number is not recorded; give only its type",
                          loc=["body", "evidence_ref"])
        return {"document_type": body.document_type.value}
    if method == "guardian":
        if row["on_behalf"] != "guardian" or not row["authority"]:
            raise Invalid("the request is not made by a guardian with a recorded authority", loc=["body", "method"])
        return {"authority": row["authority"]}
    return {"reference": body.evidence_ref} if body.evidence_ref else {}


async def _verify(session: AsyncSession, actor: Principal, row: RowMapping, body: VerifyAction,
                  profile: RegisterProfile, now: datetime) -> _Step:
    """Record how staff verified the identity, by a method the profile accepts for the type (any channel,
    signed or not: a hand signature is never demanded)."""
    _accepted_method(row, body.method.value, profile)
    evidence = _evidence(row, body)
    values: dict[str, Any] = {}
    if body.registrant_id is not None:
        values = await _link(session, actor, row, body.registrant_id, profile)
    verification = {"method": body.method.value, "evidence_ref": body.evidence_ref, "evidence": evidence,
                    "by": actor.subject, "by_name": actor.name, "at": now.isoformat()}
    return _Step({**values, "verification": verification, "verified_at": now},
                 {"method": body.method.value, "evidence_ref": body.evidence_ref, "evidence": evidence})


def _told_at(body: ExtendAction | LiftRestrictionAction, row: RowMapping, now: datetime) -> datetime:
    """When the person was told: not before receipt, not in the future (422 naming `informed_at`)."""
    if not body.person_informed:
        raise Invalid("the person must be told first", loc=["body", "person_informed"])
    told = _aware(body.informed_at, ["body", "informed_at"]) if body.informed_at else now
    if told > now:
        raise Invalid("the time the person was told is in the future", loc=["body", "informed_at"])
    if told < row["received_at"]:
        raise Invalid("the time the person was told precedes the receipt of the request", loc=["body", "informed_at"])
    return told


def _extend(row: RowMapping, body: ExtendAction, profile: RegisterProfile, now: datetime) -> _Step:
    """Extend the deadline once by two further months (Art. 12(3)), the person told of it and its reason
    within the first month; counted per Regulation 1182/71 like the first."""
    allowed = allowed_actions(row, now)
    if row["extended_at"] is not None:
        raise Conflict("the deadline was already extended once; it cannot be extended again",
                       extra={"allowed_actions": allowed})
    if now >= row["due_at"]:
        raise Conflict("the deadline has passed; an extension must be made before it",
                       extra={"allowed_actions": allowed})
    told = _told_at(body, row, now)
    if told > row["original_due_at"]:
        raise Invalid("the person must be told of the extension within one month of receipt (Art. 12(3))",
                      loc=["body", "informed_at"])
    policy = profile.rights_policy
    due = deadlines.extended(row["received_at"], policy.response_time, policy.extension, calendar_of(profile)).at
    return _Step({"due_at": due, "extended_at": now, "extension_reason": body.reason, "extension_told_at": told},
                 {"reason": body.reason, "due_at": due.isoformat()})


async def _complete(session: AsyncSession, actor: Principal, row: RowMapping, body: CompleteAction,
                    current: tuple[int, RegisterProfile], now: datetime, settings: Settings, wiring: Wiring) -> _Step:
    """Complete a verified, linked request: record any fee, then run the type's completion handler."""
    if row["verified_at"] is None or row["registrant_id"] is None:
        raise Conflict("a request is completed only after the identity is verified and the registrant linked",
                       extra={"allowed_actions": allowed_actions(row, now)})
    outcome: dict[str, Any] = dict(row["outcome"] or {})
    if body.fee is not None:
        outcome["fee"] = await _fee(session, row, body)
    if body.note:
        outcome["note"] = body.note
    handler = wiring.completion_handlers.get(row["type"])
    if handler is not None:
        ctx = CompletionContext(actor=actor, request=row, action=body, profile=current[1],
                                profile_version=current[0], now=now, settings=settings, wiring=wiring)
        outcome.update(await handler(session, ctx) or {})
    if row["recipients_requested"]:
        # Art. 19, second sentence: the person asked, so the answer names the recipients told.
        outcome["recipients_disclosed"] = sorted({n["recipient"] for n in outcome.get("recipients", [])})
    values = {"outcome": outcome, "completed_at": now, "free": body.fee is None}
    return _Step(values, {"fee": outcome.get("fee")} if body.fee else {})


async def _fee(session: AsyncSession, row: RowMapping, body: CompleteAction) -> dict[str, Any]:
    """A fee only on a lawful ground, with its reasons and the right to complain (Art. 12(5), 15(3)).

    The first copy is always free (CJEU C-307/22): `further_copy` needs an earlier access request of the
    person that was answered with a copy. A repeat inside the interval is no ground by itself.
    """
    assert body.fee is not None
    fee = body.fee.model_dump(mode="json")
    if body.fee.ground == "further_copy":
        earlier = None
        if row["type"] == RequestType.access:
            earlier = await repo.last_completed_access(session, registrant_id=row["registrant_id"], since=None,
                                                       exclude=row["id"])
        if earlier is None:
            raise Invalid("the first copy is always free (GDPR Art. 15(3), CJEU C-307/22): this person has not "
                          "had a copy yet", loc=["body", "fee", "ground"])
        fee["copy_of"] = str(earlier)
    fee["complaint"] = TEXTS["complaint"]
    return fee


async def _lift_restriction(session: AsyncSession, actor: Principal, row: RowMapping, body: LiftRestrictionAction,
                            settings: Settings) -> dict[str, Any]:
    """End the restriction in force, the person told beforehand (Art. 18(3)); recipients told it ended."""
    informed = _told_at(body, row, clock.utcnow())
    await erasure.lift_restriction(session, actor=actor, registrant_id=row["registrant_id"],
                                   request_ref=f"request:{row['id']}")
    refs = await recipients.references_by_system(session, registrant_id=row["registrant_id"])
    told = await recipients.notify(session, registrant_id=row["registrant_id"], event="restriction_lifted", fields=[],
                                   refs=refs, request_id=row["id"])
    outcome = dict(row["outcome"] or {})
    outcome["restriction_lifted"] = {"reason": body.reason, "at": clock.utcnow().isoformat(),
                                     "person_informed_at": informed.isoformat()}
    outcome["recipients"] = [*outcome.get("recipients", []), *recipients.as_outcome(told)]
    return outcome


def _reject(row: RowMapping, body: RejectAction) -> _Step:
    """Refuse a request with its reason (the Art. 12(5) justification) and the right to complain."""
    rejection: dict[str, Any] = {"reason": body.reason, "ground": body.ground}
    if body.ground in ("manifestly_unfounded", "excessive"):
        rejection["art_12_5_justification"] = body.reason
    outcome = {**(row["outcome"] or {}), "rejection": rejection, "complaint": TEXTS["complaint"]}
    return _Step({"outcome": outcome}, {"ground": body.ground})


async def transition(session: AsyncSession, *, actor: Principal, request_id: uuid.UUID,
                     body: Transition, settings: Settings, wiring: Wiring) -> RequestRead:
    """Apply one lifecycle action; 409 listing the allowed ones when the status does not allow it."""
    row = await _visible(session, actor, request_id, for_update=True)
    if actor.role == Role.automation and body.action not in AUTOMATION_ACTIONS:
        raise Forbidden(f"an automation client may only {', '.join(AUTOMATION_ACTIONS)} its requests; "
                        "staff verify identity and answer them",
                        errors=[{"loc": ["body", "action"], "msg": "staff only"}])
    now = clock.utcnow()
    allowed = allowed_actions(row, now)
    # Extension keeps its own, more telling refusals (twice, too late); the rest follow `allowed`.
    if body.action not in (TRANSITIONS[row["status"]] if body.action == RequestAction.extend else allowed):
        raise Conflict(f"a {row['status']} request cannot be told to {body.action}; allowed: "
                       f"{', '.join(allowed) or 'nothing (it is closed)'}", extra={"allowed_actions": allowed})
    current = await _profile(session)
    if isinstance(body, VerifyAction):
        step = await _verify(session, actor, row, body, current[1], now)
    elif isinstance(body, SendConfirmationAction):
        step = await _send_confirmation(session, actor, row, body, current[1], now, settings)
    elif isinstance(body, LinkAction):
        step = _Step(await _link(session, actor, row, body.registrant_id, current[1]), {})
    elif isinstance(body, ExtendAction):
        step = _extend(row, body, current[1], now)
    elif isinstance(body, CompleteAction):
        step = await _complete(session, actor, row, body, current, now, settings, wiring)
    elif isinstance(body, RejectAction):
        step = _reject(row, body)
    elif isinstance(body, LiftRestrictionAction):
        step = _Step({"outcome": await _lift_restriction(session, actor, row, body, settings)}, {})
    elif isinstance(body, WithdrawAction):
        step = _Step({"outcome": {**(row["outcome"] or {}), "withdrawal": {"reason": body.reason}}}, {})
    else:
        assert isinstance(body, StartAction)
        step = _Step({}, {})
    status = TRANSITIONS[row["status"]][RequestAction(body.action)]
    await repo.update_request(session, request_id=row["id"], values={**step.values, "status": status,
                                                                      "updated_at": now})
    await repo.add_event(session, values={"request_id": row["id"], "at": now, "action": body.action,
                                          "from_status": row["status"], "to_status": status, "actor": actor.subject,
                                          "actor_name": actor.name, "details": step.details})
    updated = await repo.get(session, request_id=row["id"], creator=None)
    assert updated is not None
    _audit(session, actor, f"request.{body.action}", updated, status=status, **step.details)
    if status != row["status"] and updated["status_callback_url"]:
        await _notify(session, updated, previous=row["status"], action=body.action, now=now)
    return _read(updated, now, calendar_of(current[1]))


async def _notify(session: AsyncSession, row: RowMapping, *, previous: str, action: str, now: datetime) -> None:
    """Queue the signed status callback (the outbox retries it with backoff)."""
    body = {"event": "request.status_changed", "request_id": str(row["id"]), "type": row["type"],
            "status": row["status"], "previous_status": previous, "action": action, "at": now.isoformat(),
            "due_at": row["due_at"].isoformat(), "package_available": bool(row["package_available"])}
    await outbox.enqueue(session, kind=MessageKind.webhook, ref_type="request.status", ref_id=row["id"],
                         registrant_id=row["registrant_id"],
                         payload={"url": row["status_callback_url"], "body": body,
                                  "signing_key_ref": f"request:{row['id']}"})


# --- the package ----------------------------------------------------------------------------

async def _erased(session: AsyncSession, registrant_id: uuid.UUID | None) -> bool:
    """Whether the request's person was erased."""
    if registrant_id is None:
        return False
    row = await registrants_repo.get(session, registrant_id=registrant_id, visibility=Visibility())
    return row is not None and row["status"] == RegistrantStatus.erased


@dataclass(frozen=True)
class Exported:
    """A downloaded package in one format."""

    content: bytes | str
    media_type: str
    filename: str
    sha256: str


async def export(session: AsyncSession, *, actor: Principal, request_id: uuid.UUID, fmt: str,
                 lang: str | None, wiring: Wiring) -> Exported:
    """The frozen package of a completed access or portability request; the download is audited."""
    row = await _visible(session, actor, request_id)
    if row["type"] not in PACKAGE_TYPES:
        raise Conflict(f"a {row['type']} request has no package; only access and portability requests do")
    stored = await repo.package(session, request_id=request_id)
    if stored is None and row["status"] == RequestStatus.completed and await _erased(session, row["registrant_id"]):
        raise Gone("the person was erased at their request (GDPR Art. 17); their earlier packages went with them")
    if stored is None:
        raise Conflict(f"the package is made when the request is completed; it is {row['status']}",
                       extra={"allowed_actions": allowed_actions(row, clock.utcnow())})
    name = f"{row['type']}-{row['id']}"
    if fmt == "html":
        content: bytes | str = packaging.render_html(stored["content"], lang=lang or stored["language"],
                                                       sections=wiring.package_sections,
                                                       profile=await register.current_profile(session))
    elif fmt == "zip":
        content = packaging.render_zip(stored["content"])
    else:
        content = stored["content"]
    _audit(session, actor, "request.export.download", row, format=fmt, sha256=stored["sha256"])
    return Exported(content=content, media_type=EXPORT_FORMATS[fmt], filename=f"{name}.{fmt}",
                    sha256=stored["sha256"])


# --- statistics -----------------------------------------------------------------------------

async def stats(session: AsyncSession, *, actor: Principal, within: timedelta = timedelta(days=7)) -> RequestStats:
    """Open requests by type and status, overdue, due soon, median days to complete (90 days), extensions."""
    now = clock.utcnow()
    by_type: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for row in await repo.open_counts(session):
        by_type[row["type"]] = by_type.get(row["type"], 0) + row["n"]
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
    times = await repo.completion_times(session, since=now - timedelta(days=90))
    days = [(done - received).total_seconds() / 86400 for received, done in times]
    return RequestStats(
        generated_at=now, open_by_type=by_type, open_by_status=by_status, open_total=sum(by_type.values()),
        overdue=await repo.count_open_due(session, before=now),
        due_within_days=within.days, due_within=await repo.count_open_due(session, before=now + within, after=now),
        median_days_to_complete_90d=round(statistics.median(days), 2) if days else None, completed_90d=len(days),
        extensions_used=await repo.count_extended(session),
    )

"""Rules of the waitlist: joining with consent, FIFO, dedupe, leaving, waves of notices, limits, audit."""

from __future__ import annotations

import secrets
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.principal import Principal, PrincipalKind
from app.consents import service as consents
from app.consents.schemas import ConsentEventCreate, Evidence, Source
from app.consents.state import Action
from app.core import clock
from app.core.config import Settings
from app.core.errors import Conflict, Invalid, NotFound, TooManyRequests
from app.db.pagination import Page, PageParams, make_page
from app.outbox import service as outbox
from app.outbox.models import OutboxMessage
from app.register import service as register
from app.registrants import guardians
from app.registrants import repository as registrants_repo
from app.registrants import service as registrants
from app.registrants.models import RegistrantKind
from app.registrants.schemas import RegistrantCreate
from app.waitlist import repository as repo
from app.waitlist.models import ContactHolder, EntryStatus, NotificationStatus
from app.waitlist.repository import EntryFilter, Wave
from app.waitlist.schemas import (
    EntryCreate,
    EntryCreated,
    EntryRead,
    NotificationCreate,
    NotificationRead,
    Unsubscribed,
    WaitlistStats,
)
from app.waitlist.texts import Brand, render, unsubscribe_link

PURPOSE = repo.PURPOSE
UNSUBSCRIBE_LINK = Principal(kind=PrincipalKind.system, id=None, name="waitlist unsubscribe link", role=None)
_NO_ENTRY = "no such waitlist entry"
_NO_NOTIFICATION = "no such notification"


def _visibility(actor: Principal) -> Any:
    """The registrant condition of what the caller may see (None: everything)."""
    return registrants.visibility_for(actor).clause()


def _read(row: RowMapping) -> EntryRead:
    """An entry row (with `tags_csv` and `position`) as the response body."""
    channels = [c for c in ("email", "sms") if row[f"by_{c}"]]
    interests = [i for i in ("cancellations", "enrolments") if row[i]]
    tags = sorted(t for t in (row["tags_csv"] or "").split(",") if t)
    holder = ContactHolder.guardian if row["guardian_id"] else ContactHolder.self
    return EntryRead.model_validate({**row, "channels": channels, "interests": interests, "tags": tags,
                                     "contact_holder": holder})


def _audit(session: AsyncSession, actor: Principal, action: str, entry: EntryRead | RowMapping, **details: Any) -> None:
    """Audit one action on an entry, naming its registrant."""
    entry_id = entry.id if isinstance(entry, EntryRead) else entry["id"]
    registrant_id = entry.registrant_id if isinstance(entry, EntryRead) else entry["registrant_id"]
    audit.record(session, actor=actor, action=action, resource_type="waitlist_entry", resource_id=entry_id,
                 registrant_ids=[registrant_id], details=details or None)


def _contact(data: EntryCreate) -> tuple[str | None, str | None, list[str]]:
    """The email and phone notices go to (the guardian's for a child joined by one) and where they were given."""
    if data.guardian is not None:
        return data.guardian.email, data.guardian.phone, ["body", "guardian"]
    return data.email, data.phone, ["body"]


def _check_channels(data: EntryCreate) -> None:
    """Each channel chosen needs its contact; 422 naming the missing field."""
    email, phone, loc = _contact(data)
    for channel, contact in (("email", email), ("sms", phone)):
        if channel in data.channels and contact is None:
            field = "email" if channel == "email" else "phone"
            raise Invalid(f"the channel {channel} needs the {field}", loc=[*loc, field])


def _birth(data: EntryCreate) -> tuple[date, bool]:
    """The date of birth, or the estimate from the age (marked as such); 422 when neither is given."""
    if data.date_of_birth is not None:
        return data.date_of_birth, False
    if data.age is None:
        raise Invalid("give the date of birth (or, if it is not known, the age)", loc=["body", "date_of_birth"])
    return guardians.estimated_birth_date(data.age, clock.utcnow().date()), True


async def _check_guardian(session: AsyncSession, data: EntryCreate, born: date) -> None:
    """Under the guardian age a guardian joins for the child; from 18 nobody does (GDPR Art. 8, 361/1983 § 4)."""
    age = guardians.age_on(born, clock.utcnow().date())
    if data.guardian is None and age < await register.guardian_age(session):
        raise Invalid("a child under the guardian age is put on the list by a guardian: name the guardian",
                      loc=["body", "guardian"])
    if data.guardian is not None and age >= guardians.MAJORITY:
        raise Invalid(f"a person of {guardians.MAJORITY} or more joins without a guardian", loc=["body", "guardian"])


async def _limit(session: AsyncSession, *, table: str, actor: Principal, window: timedelta, cap: int,
                 what: str) -> None:
    """429 with Retry-After once the caller made `cap` of these within the window (counted in the database)."""
    now = clock.utcnow()
    count, oldest = await repo.count_since(session, table=table, actor=actor.subject, since=now - window)
    if count >= cap:
        wait = (oldest + window - now).total_seconds() if oldest else window.total_seconds()
        raise TooManyRequests(f"at most {cap} {what} per {int(window.total_seconds())} s for one caller",
                              retry_after=int(wait) + 1)


async def _consent(session: AsyncSession, *, actor: Principal, registrant_id: uuid.UUID, action: str, channel: str,
                   source: Source, evidence: Evidence, policy_url: str) -> None:
    """Record a waitlist grant or withdrawal for one channel in the caller's transaction."""
    event = ConsentEventCreate(action=action, purpose=PURPOSE, channel=channel, source=source, evidence=evidence)
    await consents.record_event(session, actor=actor, registrant_id=registrant_id, data=event, policy_url=policy_url)


def _same_birth(row: RowMapping, born: date, estimated: bool) -> bool:
    """Whether a stored date of birth is the one given (or, where either is an estimate, gives the same age)."""
    if row["date_of_birth"] is None:
        return True
    if not (estimated or row["birth_date_estimated"]):
        return row["date_of_birth"] == born
    return guardians.age_today(row["date_of_birth"]) == guardians.age_today(born)


async def _person(session: AsyncSession, *, actor: Principal, given_name: str, family_name: str, born: date | None,
                  estimated: bool, email: str | None, phone: str | None, language: str,
                  guardian_id: uuid.UUID | None = None) -> uuid.UUID:
    """The registrant this person already is, or a new one.

    Names and date of birth decide, never an email or phone alone: an adult is matched by names and their own
    email or phone, a child by names among the guardian's children; a sibling with the same contact details is
    a different person (a registrant of its own).
    """
    rows = await registrants_repo.same_named_people(
        session, given_name=given_name, family_name=family_name, email=email, phone=phone, guardian_id=guardian_id,
        visibility=registrants.visibility_for(actor))
    match = next((r for r in rows if born is None or _same_birth(r, born, estimated)), None)
    if match is not None:
        if match["date_of_birth"] is None and born is not None:
            row = await registrants.visible_registrant(session, actor=actor, registrant_id=match["id"], for_update=True)
            await registrants.apply_changes(session, actor=actor, row=row, expected=None, changes={
                "date_of_birth": born, "birth_date_estimated": estimated})
        return match["id"]
    created = await registrants.create_registrant(session, actor=actor, data=RegistrantCreate(
        kind=RegistrantKind.person, given_name=given_name, family_name=family_name, date_of_birth=born,
        birth_date_estimated=estimated, email=email, phone=phone, language=language,
        guardian_ids=[guardian_id] if guardian_id else []))
    return created.id


async def _registrant_for(session: AsyncSession, *, actor: Principal, data: EntryCreate, born: date,
                          estimated: bool) -> tuple[uuid.UUID, uuid.UUID | None]:
    """The person on the list and, for a child joined by a guardian, the guardian (both registrants)."""
    guardian = data.guardian
    if guardian is None:
        return await _person(session, actor=actor, given_name=data.given_name, family_name=data.family_name,
                             born=born, estimated=estimated, email=data.email, phone=data.phone,
                             language=data.language), None
    guardian_id = await _person(session, actor=actor, given_name=guardian.given_name,
                                family_name=guardian.family_name, born=None, estimated=False, email=guardian.email,
                                phone=guardian.phone, language=data.language)
    await guardians_check(session, actor=actor, guardian_id=guardian_id)
    child_id = await _person(session, actor=actor, given_name=data.given_name, family_name=data.family_name,
                             born=born, estimated=estimated, email=data.email, phone=data.phone,
                             language=data.language, guardian_id=guardian_id)
    return child_id, guardian_id


async def guardians_check(session: AsyncSession, *, actor: Principal, guardian_id: uuid.UUID) -> None:
    """The guardian found or made is of full age (422 naming `guardian` otherwise)."""
    await guardians.check_guardian(session, child_id=None, guardian_id=guardian_id,
                                   visibility=registrants.visibility_for(actor), loc=["body", "guardian"])


async def join(session: AsyncSession, *, actor: Principal, data: EntryCreate,
               settings: Settings) -> tuple[EntryCreated, bool]:
    """Put a person on the list with a consent per channel; the same person and interest gets the entry back."""
    _check_channels(data)
    born, estimated = _birth(data)
    await _check_guardian(session, data, born)
    await register.active_purpose(session, code=PURPOSE, loc=["body", "channels"])
    await _limit(session, table="entry", actor=actor, window=timedelta(minutes=1),
                 cap=settings.waitlist_signups_per_client_per_minute, what="sign-ups")
    registrant_id, guardian_id = await _registrant_for(session, actor=actor, data=data, born=born,
                                                       estimated=estimated)
    email, phone, _ = _contact(data)
    existing = await repo.active_entry_with_interest(session, registrant_id=registrant_id, interests=data.interests)
    if existing is not None:
        row = await repo.get_entry(session, entry_id=existing, visibility=None)
        _audit(session, actor, "waitlist.entry.rejoin", row)
        return EntryCreated(**_read(row).model_dump(), unsubscribe_token=None, unsubscribe_url=None), False
    token, entry_id, now = secrets.token_urlsafe(32), uuid.uuid4(), clock.utcnow()
    await repo.insert_entry(session, tags=data.tags, values={
        "id": entry_id, "registrant_id": registrant_id, "given_name": data.given_name, "family_name": data.family_name,
        "guardian_id": guardian_id, "email": email, "phone": phone,
        "by_email": "email" in data.channels, "by_sms": "sms" in data.channels,
        "cancellations": "cancellations" in data.interests, "enrolments": "enrolments" in data.interests,
        "status": EntryStatus.active, "joined_at": now, "token_hash": repo.token_hash(token), "created_by": actor.subject,
    })
    source = Source(data.source or ("booking" if actor.kind == PrincipalKind.client else "staff"))
    evidence = data.evidence
    if guardian_id is not None and evidence.given_by != "self":
        # Joining with `guardian` is that guardian's act (the body names them); from the guardian age the child's
        # own consent may be recorded instead with evidence.given_by: self.
        evidence = evidence.model_copy(update={"given_by": "guardian", "guardian_id": guardian_id})
    for channel in data.channels:
        await _consent(session, actor=actor, registrant_id=registrant_id, action=Action.grant, channel=channel,
                       source=source, evidence=evidence, policy_url=_policy_url(settings))
    row = await repo.get_entry(session, entry_id=entry_id, visibility=None)
    _audit(session, actor, "waitlist.entry.create", row, channels=data.channels, interests=data.interests)
    return EntryCreated(**_read(row).model_dump(), unsubscribe_token=token,
                        unsubscribe_url=unsubscribe_link(settings.public_base_url, token)), True


def _policy_url(settings: Settings) -> str:
    """The public privacy statement that consent receipts point to."""
    return f"{settings.public_base_url.rstrip('/')}/v1/register/statement"


async def get_entry(session: AsyncSession, *, actor: Principal, entry_id: uuid.UUID) -> EntryRead:
    """One entry the caller may see; the read is audited."""
    row = await repo.get_entry(session, entry_id=entry_id, visibility=_visibility(actor))
    if row is None:
        raise NotFound(_NO_ENTRY)
    _audit(session, actor, "waitlist.entry.read", row)
    return _read(row)


async def list_entries(session: AsyncSession, *, actor: Principal, filters: EntryFilter,
                       params: PageParams) -> Page[EntryRead]:
    """A page of entries in FIFO order; one audit entry names them all."""
    rows = await repo.find_entries(session, filters=filters, visibility=_visibility(actor), params=params)
    page = make_page(rows, params, keyset=repo.ENTRIES_KEYSET, convert=_read)
    items = page.items
    audit.record(session, actor=actor, action="waitlist.entry.list", resource_type="waitlist_entry",
                 registrant_ids=[i.registrant_id for i in items], details={"count": len(items)})
    return page


async def _end(session: AsyncSession, *, actor: Principal, row: RowMapping, status: str, reason: str,
               source: Source, settings: Settings) -> None:
    """End an active entry and withdraw the consent of channels no other active entry of the person uses."""
    if not await repo.end_entry(session, entry_id=row["id"], status=status, reason=reason, now=clock.utcnow()):
        raise Conflict(f"the entry is {row['status']}, not active")
    still = await repo.channels_still_used(session, registrant_id=row["registrant_id"], other_than=row["id"])
    for channel in ("email", "sms"):
        if row[f"by_{channel}"] and channel not in still:
            await _consent(session, actor=actor, registrant_id=row["registrant_id"], action=Action.withdraw,
                           channel=channel, source=source, evidence=Evidence(reference=f"waitlist {reason}"),
                           policy_url=_policy_url(settings))


async def end_entry(session: AsyncSession, *, actor: Principal, entry_id: uuid.UUID, status: EntryStatus,
                    settings: Settings) -> EntryRead:
    """Mark an entry enrolled (it leaves the list) or removed by staff; its consent is withdrawn."""
    row = await repo.get_entry(session, entry_id=entry_id, visibility=_visibility(actor), for_update=True)
    if row is None:
        raise NotFound(_NO_ENTRY)
    source = Source.booking if actor.kind == PrincipalKind.client else Source.staff
    await _end(session, actor=actor, row=row, status=status, reason=status, source=source, settings=settings)
    ended = await repo.get_entry(session, entry_id=entry_id, visibility=None)
    _audit(session, actor, f"waitlist.entry.{status}", ended)
    return _read(ended)


async def brand(session: AsyncSession) -> Brand:
    """The list's name and the controller's, from the register profile in force (never hard-coded)."""
    return Brand.of(await register.current_profile(session), purpose=PURPOSE)


async def unsubscribe(session: AsyncSession, *, token: str, settings: Settings) -> Unsubscribed:
    """Leave the list with a token from a notice or from joining; unknown or used tokens are 404 alike."""
    entry_id = await repo.entry_for_token(session, hashed=repo.token_hash(token))
    row = await repo.get_entry(session, entry_id=entry_id, visibility=None, for_update=True) if entry_id else None
    if row is None or row["status"] != EntryStatus.active:
        raise NotFound("unknown or already used link")
    await _end(session, actor=UNSUBSCRIBE_LINK, row=row, status=EntryStatus.left, reason="unsubscribe",
               source=Source.unsubscribe_link, settings=settings)
    _audit(session, UNSUBSCRIBE_LINK, "waitlist.unsubscribe", row)
    return Unsubscribed()


# --- notifications ------------------------------------------------------------------------------

def _notification(row: RowMapping | dict[str, Any], *, wave: list[RowMapping] | None = None) -> NotificationRead:
    """A notification row (and the rows its wave wrote) as the response body."""
    wave = wave or []
    sent = [r for r in wave if r["channel"] != "sms_skipped"]
    return NotificationRead(
        id=row["id"], interest=row["interest"], message=row["message"],
        slot={"starts_at": row["slot_starts_at"], "description": row["slot_description"]}, tags=row["tags"] or [],
        mode=row["mode"], limit=row["wave_size"], status=row["status"], waves=row["waves"],
        recipients=row["recipients"], wave_recipients=len({r["entry_id"] for r in sent}), deliveries=len(sent),
        skipped_sms_limit=sum(1 for r in wave if r["channel"] == "sms_skipped"), created_at=row["created_at"],
        closed_at=row["closed_at"])


async def _wave(session: AsyncSession, *, actor: Principal, row: dict[str, Any] | RowMapping,
                settings: Settings) -> NotificationRead:
    """Notify the next entries in FIFO order (all, or the next N) and record it on the notification."""
    now, number = clock.utcnow(), row["waves"] + 1
    wave = Wave(notification_id=row["id"], number=number, interest=row["interest"], tags=row["tags"] or [],
                limit=row["wave_size"] if row["mode"] == "first_n" else None, sms_since=now - timedelta(hours=1),
                sms_max=settings.waitlist_sms_per_phone_per_hour, visibility=_visibility(actor))
    notice = render(base_url=settings.public_base_url, message=row["message"], starts_at=row["slot_starts_at"],
                    description=row["slot_description"], brand=await brand(session))
    written = await repo.write_wave(session, wave=wave, notice=notice, nonce=secrets.token_hex(32), now=now,
                                    max_attempts=settings.outbox_max_attempts)
    reached = len({r["entry_id"] for r in written if r["channel"] != "sms_skipped"})
    values = {"waves": number, "recipients": row["recipients"] + reached}
    await repo.update_notification(session, notification_id=row["id"], values=values)
    audit.record(session, actor=actor, action="waitlist.notify", resource_type="waitlist_notification",
                 resource_id=row["id"], registrant_ids={r["registrant_id"] for r in written
                                                        if r["channel"] != "sms_skipped"},
                 details={"wave": number, "entries": reached,
                          "deliveries": sum(1 for r in written if r["channel"] != "sms_skipped")})
    return _notification({**row, **values}, wave=written)


async def notify(session: AsyncSession, *, actor: Principal, data: NotificationCreate,
                 settings: Settings) -> NotificationRead:
    """Announce a free slot: record the notification and its first wave of deliveries."""
    if data.mode == "first_n" and data.limit is None:
        raise Invalid("first_n needs a limit", loc=["body", "limit"])
    if data.mode == "all" and data.limit is not None:
        raise Invalid("limit is for first_n only", loc=["body", "limit"])
    await _limit(session, table="notification", actor=actor, window=timedelta(hours=1),
                 cap=settings.waitlist_notifications_per_client_per_hour, what="notifications")
    row = {"id": uuid.uuid4(), "interest": data.interest, "message": data.message,
           "slot_starts_at": data.slot.starts_at, "slot_description": data.slot.description, "tags": data.tags,
           "mode": data.mode, "wave_size": data.limit, "waves": 0, "recipients": 0, "status": NotificationStatus.open,
           "created_by": actor.subject, "created_at": clock.utcnow(), "closed_at": None}
    await repo.insert_notification(session, values=row)
    return await _wave(session, actor=actor, row=row, settings=settings)


async def _readable_notification(session: AsyncSession, *, actor: Principal, notification_id: uuid.UUID,
                                 for_update: bool = False) -> RowMapping:
    """The one place that decides who may name a notification: staff any, an integration its own system's; 404."""
    owners = None
    if registrants.is_integration(actor):
        owners = await repo.notification_owners(session, system=actor.system or "")
    row = await repo.get_notification(session, notification_id=notification_id, owners=owners, for_update=for_update)
    if row is None:
        raise NotFound(_NO_NOTIFICATION)
    return row


async def _open_notification(session: AsyncSession, *, actor: Principal, notification_id: uuid.UUID) -> RowMapping:
    """The notification, locked; 404 if unknown or another system's, 409 once closed."""
    row = await _readable_notification(session, actor=actor, notification_id=notification_id, for_update=True)
    if row["status"] == NotificationStatus.closed:
        raise Conflict("the slot is taken: this notification is closed")
    return row


async def next_wave(session: AsyncSession, *, actor: Principal, notification_id: uuid.UUID,
                    settings: Settings) -> NotificationRead:
    """Notify the next N entries of a first_n notification that is still open."""
    row = await _open_notification(session, actor=actor, notification_id=notification_id)
    if row["mode"] != "first_n":
        raise Conflict("a notification to everyone has no next wave")
    return await _wave(session, actor=actor, row=row, settings=settings)


async def close(session: AsyncSession, *, actor: Principal, notification_id: uuid.UUID) -> NotificationRead:
    """Mark the slot taken; later waves are refused."""
    row = await _open_notification(session, actor=actor, notification_id=notification_id)
    values = {"status": NotificationStatus.closed, "closed_at": clock.utcnow()}
    await repo.update_notification(session, notification_id=notification_id, values=values)
    audit.record(session, actor=actor, action="waitlist.notification.close", resource_type="waitlist_notification",
                 resource_id=notification_id)
    return _notification({**row, **values})


async def get_notification(session: AsyncSession, *, actor: Principal, notification_id: uuid.UUID) -> NotificationRead:
    """One notification the caller may name (no personal data)."""
    return _notification(await _readable_notification(session, actor=actor, notification_id=notification_id))


async def stats(session: AsyncSession) -> WaitlistStats:
    """Counts only: active entries per interest and channel, median wait, notices, unsubscribes."""
    now = clock.utcnow()
    return WaitlistStats.model_validate(await repo.stats(session, since=now - timedelta(days=30), now=now))


async def check_before_send(session: AsyncSession, message: OutboxMessage) -> str | None:
    """The re-check at send time: the entry still active, the registrant active, the channel's consent granted."""
    return await repo.delivery_still_allowed(session, delivery_id=uuid.UUID(message.ref_id))


"""What completing a rectification, erasure, restriction or objection request does, in its transaction.

Each handler does the work, tells every recipient of the data where GDPR Art. 19 asks for it, and
returns what it did for the request's `outcome` (which the answer to the person is written from).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.consents import service as consents
from app.consents.schemas import ConsentEventCreate, Evidence, Source
from app.consents.state import Action
from app.core.errors import Invalid
from app.registrants import erasure, recipients
from app.registrants.rectification import Change, Decision, rectify
from app.subject_requests.service import FREEZE_PACKAGE, CompletionContext, CompletionHandler
from app.subject_requests.states import RequestType

# How the request came in, as a consent-ledger source.
_SOURCE = {"letter": Source.letter, "in_person": Source.in_person, "web_form": Source.web_form}


async def _tell(session: AsyncSession, ctx: CompletionContext, event: recipients.Event, fields: list[str],
                refs: dict[str, list[str]]) -> list[dict[str, str]]:
    told = await recipients.notify(session, registrant_id=ctx.request["registrant_id"], event=event, fields=fields,
                                   refs=refs, request_id=ctx.request["id"])
    return recipients.as_outcome(told)


async def _rectification(session: AsyncSession, ctx: CompletionContext) -> dict[str, Any]:
    """Decide each requested change; apply the approved ones through the normal validation."""
    if ctx.action.decisions is None:
        raise Invalid("decide each requested change (approve, or reject with a reason)", loc=["body", "decisions"])
    changes = [Change(c["field"], c.get("current_value"), c.get("corrected_value")) for c in ctx.request["changes"]]
    decisions = [Decision(d.approve, d.reason) for d in ctx.action.decisions]
    outcomes = await rectify(session, actor=ctx.actor, registrant_id=ctx.request["registrant_id"],
                             request_id=ctx.request["id"], changes=changes, decisions=decisions,
                             loc=["body", "decisions"])
    applied = [o.field for o in outcomes if o.outcome == "applied"]
    refs = await recipients.references_by_system(session, registrant_id=ctx.request["registrant_id"])
    told = await _tell(session, ctx, "rectified", applied, refs) if applied else []
    return {"changes": [o.__dict__ for o in outcomes], "recipients": told}


async def _erasure(session: AsyncSession, ctx: CompletionContext) -> dict[str, Any]:
    """Erase the person everywhere, keeping only what the law requires, and tell the recipients."""
    registrant_id = ctx.request["registrant_id"]
    refs = await recipients.references_by_system(session, registrant_id=registrant_id)
    result = await erasure.erase(session, actor=ctx.actor, registrant_id=registrant_id,
                                 key=ctx.settings.erasure_key_list()[0], request_ref=f"request:{ctx.request['id']}",
                                 steps=ctx.wiring.erasure_steps)
    told = await _tell(session, ctx, "erased", list(erasure.PERSONAL_FIELDS), refs)
    return {"erasure": {"erased_at": result.erased_at.isoformat(), "kept": [k.__dict__ for k in result.kept]},
            "recipients": told}


async def _restriction(session: AsyncSession, ctx: CompletionContext) -> dict[str, Any]:
    """Restrict processing (Art. 18) until lifted, and tell the recipients."""
    registrant_id = ctx.request["registrant_id"]
    await erasure.restrict(session, actor=ctx.actor, registrant_id=registrant_id,
                           request_ref=f"request:{ctx.request['id']}")
    refs = await recipients.references_by_system(session, registrant_id=registrant_id)
    return {"restriction": {"since": ctx.now.isoformat()}, "recipients": await _tell(session, ctx, "restricted", [], refs)}


async def _objection(session: AsyncSession, ctx: CompletionContext) -> dict[str, Any]:
    """Record an objection in the ledger for each purpose named (direct marketing: every channel, at once)."""
    policy_url = ctx.settings.public_base_url.rstrip("/") + "/v1/register/statement"
    source = _SOURCE.get(ctx.request["channel"], Source.staff)
    recorded = []
    for purpose in ctx.request["purposes"]:
        event = await consents.record_event(
            session, actor=ctx.actor, registrant_id=ctx.request["registrant_id"], policy_url=policy_url,
            data=ConsentEventCreate(action=Action.object, purpose=purpose, source=source,
                                    evidence=Evidence(reference=f"request:{ctx.request['id']}")))
        recorded.append({"purpose": purpose, "event_id": str(event.id)})
    return {"objections": recorded}


HANDLERS: dict[RequestType, CompletionHandler] = {
    RequestType.access: FREEZE_PACKAGE, RequestType.portability: FREEZE_PACKAGE,
    RequestType.rectification: _rectification, RequestType.erasure: _erasure,
    RequestType.restriction: _restriction, RequestType.objection: _objection}

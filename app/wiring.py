"""The composition root: every domain's hooks, collected in one place.

Nothing registers itself when a module is imported. Each domain declares its parts next to its data
(erasure steps, package sections, retention rules, completion handlers, purpose-usage checks, send
checks, signing-key resolvers, metrics gauges) and `build` puts them on one `Wiring` object, which `create_app` keeps on
`app.state.wiring` and the CLI builds for its jobs. Two apps built in one process share nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from app.audit import retention as audit_retention
from app.auth import retention as auth_retention
from app.auth import service as auth_service
from app.consents import repository as consents_repo
from app.consents import retention as consents_retention
from app.consents import rights as consents_rights
from app.core.config import Settings
from app.idempotency import retention as idempotency_retention
from app.idempotency import rights as idempotency_rights
from app.metrics import gauges as metrics_gauges
from app.metrics.service import Gauge
from app.outbox import retention as outbox_retention
from app.outbox import rights as outbox_rights
from app.outbox.service import OutboxHooks
from app.register.retention import Hold, RetentionRule
from app.register.service import PurposeUsageCheck
from app.registrants import erasure, recipients
from app.registrants import retention as registrants_retention
from app.registrants import rights as registrants_rights
from app.subject_requests import completions, package
from app.subject_requests import repository as requests_repo
from app.subject_requests import retention as requests_retention
from app.subject_requests import rights as requests_rights
from app.subject_requests import service as requests_service
from app.subject_requests.service import CompletionHandler
from app.waitlist import repository as waitlist_repo
from app.waitlist import retention as waitlist_retention
from app.waitlist import rights as waitlist_rights
from app.waitlist import service as waitlist_service


@dataclass
class Wiring:
    """The hooks one app (or one CLI run) uses; tests may build their own and change it freely."""

    erasure_steps: list[erasure.ErasureStep] = field(default_factory=list)
    package_sections: list[package.PackageSection] = field(default_factory=list)
    retention_rules: list[RetentionRule] = field(default_factory=list)
    retention_holds: list[Hold] = field(default_factory=list)
    completion_handlers: dict[str, CompletionHandler] = field(default_factory=dict)
    purpose_usage_checks: list[PurposeUsageCheck] = field(default_factory=list)
    outbox: OutboxHooks = field(default_factory=OutboxHooks)
    gauges: list[Gauge] = field(default_factory=list)


def build(settings: Settings) -> Wiring:
    """Every domain's hooks, in the order they run."""
    wiring = Wiring()
    # GDPR Art. 17: each domain erases its own tables, in one transaction; the registrant row itself is blanked last.
    wiring.erasure_steps += [*registrants_rights.ERASURE, consents_rights.ERASURE, waitlist_rights.ERASURE,
                             requests_rights.ERASURE, outbox_rights.ERASURE, idempotency_rights.ERASURE]
    # GDPR Art. 15 and 20: each domain's sections of the access and portability package, in this order.
    wiring.package_sections += [*registrants_rights.SECTIONS, *consents_rights.SECTIONS, *requests_rights.SECTIONS,
                                *waitlist_rights.SECTIONS]
    # GDPR Art. 5(1)(e): each domain's retention rules, and the holds that keep a person's data past its period.
    wiring.retention_rules += [*registrants_retention.RULES, *consents_retention.RULES, *waitlist_retention.RULES,
                               *requests_retention.RULES, *auth_retention.RULES, *outbox_retention.RULES,
                               *idempotency_retention.RULES, *audit_retention.RULES]
    wiring.retention_holds += [*registrants_retention.HOLDS, *requests_retention.HOLDS, *consents_retention.HOLDS,
                               *waitlist_retention.HOLDS]
    wiring.completion_handlers.update(completions.HANDLERS)
    # A purpose still named by a consent (waitlist entries record one) or an objection may be retired, never deleted.
    wiring.purpose_usage_checks += [consents_repo.purposes_used, requests_repo.purposes_named]
    wiring.outbox.add_send_check(waitlist_repo.REF_TYPE, waitlist_service.check_before_send)
    wiring.outbox.add_key_resolver("client", auth_service.callback_secret)
    wiring.outbox.add_key_resolver("request", requests_service.callback_secret)
    wiring.outbox.add_key_resolver("recipient", recipients.key_resolver(settings))
    # GET /metrics: read from the database (or the process) at every scrape.
    wiring.gauges += metrics_gauges.GAUGES
    return wiring


async def get_wiring(request: Request) -> Wiring:
    """The hooks of the app serving this request."""
    return request.app.state.wiring


WiringDep = Annotated[Wiring, Depends(get_wiring)]

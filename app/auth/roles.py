"""Roles and the scopes they grant: declared once, here."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """What a token may do; every endpoint names the one it needs."""

    users_admin = "users:admin"
    clients_admin = "clients:admin"
    register_read = "register:read"
    register_write = "register:write"
    registrants_read = "registrants:read"
    registrants_write = "registrants:write"
    consents_read = "consents:read"
    consents_write = "consents:write"
    waitlist_read = "waitlist:read"
    waitlist_write = "waitlist:write"
    requests_read = "requests:read"
    requests_write = "requests:write"
    exports_read = "exports:read"
    audit_read = "audit:read"
    stats_read = "stats:read"
    metrics_read = "metrics:read"


class Role(StrEnum):
    """Who a principal is, as in DESIGN.md's role table."""

    controller = "controller"
    staff = "staff"
    auditor = "auditor"
    viewer = "viewer"
    integration = "integration"
    automation = "automation"


STAFF_ROLES = (Role.controller, Role.staff, Role.auditor, Role.viewer)
CLIENT_ROLES = (Role.integration, Role.automation, Role.viewer)

_READS = {s for s in Scope if s.value.endswith(":read")}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.controller: frozenset(Scope),
    Role.staff: frozenset({
        Scope.register_read, Scope.registrants_read, Scope.registrants_write, Scope.consents_read,
        Scope.consents_write, Scope.waitlist_read, Scope.waitlist_write, Scope.requests_read,
        Scope.requests_write, Scope.exports_read, Scope.stats_read,
    }),
    Role.auditor: frozenset(_READS),
    # Dashboards and Prometheus: aggregates only, never personal data.
    Role.viewer: frozenset({Scope.register_read, Scope.stats_read, Scope.metrics_read}),
    Role.integration: frozenset({
        Scope.register_read, Scope.registrants_read, Scope.registrants_write, Scope.consents_read,
        Scope.consents_write, Scope.waitlist_read, Scope.waitlist_write,
    }),
    Role.automation: frozenset({Scope.register_read, Scope.requests_read, Scope.requests_write, Scope.exports_read}),
}

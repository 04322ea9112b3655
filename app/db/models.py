"""Every model, imported once, so alembic and the tests see the whole schema."""

from app.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditPending, AuditPurgePermit, AuditSubject
from app.auth.models import ApiClient, LoginThrottle, UserAccount
from app.consents.models import ConsentEvent, ConsentState
from app.db.base import Base
from app.idempotency.models import IdempotencyKey
from app.outbox.models import OutboxMessage
from app.register.models import RegisterVersion
from app.registrants.models import (
    Registrant,
    RegistrantCustomerType,
    RegistrantHistory,
    RegistrantRef,
    RelationshipRecord,
)
from app.subject_requests.models import SubjectRequest, SubjectRequestEvent, SubjectRequestPackage
from app.waitlist.models import WaitlistDelivery, WaitlistEntry, WaitlistEntryTag, WaitlistNotification

__all__ = [
    "ApiClient", "AuditCheckpoint", "AuditEntry", "AuditHead", "AuditPending", "AuditPurgePermit", "AuditSubject",
    "Base", "ConsentEvent", "ConsentState",
    "IdempotencyKey", "LoginThrottle", "OutboxMessage", "RegisterVersion", "Registrant", "RegistrantCustomerType",
    "RegistrantHistory", "RegistrantRef", "RelationshipRecord", "SubjectRequest", "SubjectRequestEvent",
    "SubjectRequestPackage", "UserAccount", "WaitlistDelivery", "WaitlistEntry", "WaitlistEntryTag",
    "WaitlistNotification",
]

"""Every model, imported once, so alembic and the tests see the whole schema."""

from app.audit.models import AuditEntry, AuditHead, AuditSubject
from app.auth.models import ApiClient, LoginThrottle, UserAccount
from app.db.base import Base
from app.idempotency.models import IdempotencyKey
from app.registrants.models import (
    Registrant,
    RegistrantCustomerType,
    RegistrantHistory,
    RegistrantRef,
    RelationshipRecord,
)

__all__ = [
    "ApiClient", "AuditEntry", "AuditHead", "AuditSubject", "Base", "IdempotencyKey", "LoginThrottle", "Registrant",
    "RegistrantCustomerType", "RegistrantHistory", "RegistrantRef", "RelationshipRecord", "UserAccount",
]

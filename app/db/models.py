"""Every model, imported once, so alembic and the tests see the whole schema."""

from app.audit.models import AuditEntry, AuditHead, AuditPurgePermit, AuditSubject
from app.auth.models import ApiClient, LoginThrottle, UserAccount
from app.db.base import Base
from app.outbox.models import OutboxMessage
from app.register.models import RegisterVersion

__all__ = [
    "ApiClient", "AuditEntry", "AuditHead", "AuditPurgePermit", "AuditSubject", "Base", "LoginThrottle",
    "OutboxMessage", "RegisterVersion", "UserAccount",
]

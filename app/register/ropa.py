"""The record of processing activities (GDPR Art. 30(1)) and which tables hold which data category.

Every table in `Base.metadata` must be listed in `PERSONAL_DATA_TABLES` (with the data category of the
register profile that covers it) or in `NON_PERSONAL_TABLES`; a test fails otherwise, so a module that
adds a table adds it here too.
"""

from __future__ import annotations

from app.register.schemas import (
    EU_EEA,
    LegalBasis,
    Purpose,
    Recipient,
    RegisterVersionRead,
    RopaCategory,
    RopaPurpose,
    RopaRead,
    RopaRecipient,
)
from app.register.statement import marketing_channels

PERSONAL_DATA_TABLES: dict[str, str] = {
    "user_account": "staff_accounts",
    "api_client": "staff_accounts",  # names the person or system a client speaks for, and who created it
    "register_version": "staff_accounts",  # who wrote each version
    "login_throttle": "login_attempts",  # keyed by the login name (an email address)
    "audit_entry": "audit_log",
    "audit_subject": "audit_log",
    "audit_pending": "audit_log",  # entries written and not yet sealed into the chain (about a second's worth)
    "outbox_message": "customer_relationship",  # notices and callbacks on their way: recipient and text
    "registrant": "contact_details",
    "registrant_ref": "contact_details",  # an external system's id of the person
    "registrant_customer_type": "customer_relationship",
    "registrant_history": "contact_details",  # old and new values of each change
    "guardian_link": "contact_details",  # who is a child's guardian (361/1983), since when, from where
    "relationship_record": "customer_relationship",  # orders, lessons, answers...; invoices: accounting_vouchers
    "idempotency_key": "api_replays",  # the stored first response of a retried POST, kept a day
    "consent_event": "consents",
    "consent_state": "consents",
    "optout_use": "consents",  # which registrant used a one-click opt-out link, when
    "subject_request": "contact_details",  # the requester's name and contacts, the changes asked for
    "subject_request_event": "customer_relationship",  # each transition of a request
    "subject_request_package": "customer_relationship",  # the frozen copy of everything held on the person
    "subject_request_confirmation": "contact_details",  # where a confirmation link went (masked)
    # Waitlist data is the singing school's `waitlist_entries` category (its retention rule uses that code), but
    # the map must name a category both example profiles have: names, the guardian, email and phone are contact
    # details; who was notified of which slot is customer relationship.
    "waitlist_entry": "contact_details",
    "waitlist_entry_tag": "contact_details",
    "waitlist_notification": "customer_relationship",  # the slot and message; who sent it
    "waitlist_delivery": "customer_relationship",
}

NON_PERSONAL_TABLES: frozenset[str] = frozenset({
    "audit_head",  # the chain's first and last sequence numbers and hashes
    "audit_checkpoint",  # signed sequence numbers and hashes of the chain's head
    "audit_purge_permit",  # an empty flag table the retention purge fills inside its own transaction
})


def _recipient(recipient: Recipient) -> RopaRecipient:
    return RopaRecipient(name=recipient.name, role=recipient.role, location=recipient.location,
                         third_country=recipient.location not in EU_EEA, safeguard=recipient.safeguard)


def _purpose(purpose: Purpose) -> RopaPurpose:
    """A purpose, how a person stops it, and for direct marketing what each channel rests on."""
    stop = "withdrawal" if purpose.legal_basis is LegalBasis.consent else ("objection" if purpose.objectable else "none")
    return RopaPurpose(code=purpose.code, name=purpose.name, legal_basis=purpose.legal_basis, retired=purpose.retired,
                       direct_marketing=purpose.direct_marketing, how_to_stop=stop,
                       marketing_channels=marketing_channels(purpose) if purpose.direct_marketing else None)


def build(version: RegisterVersionRead) -> RopaRead:
    """Art. 30(1) (a)-(g) from one version of the profile and the table mapping above."""
    profile = version.profile
    categories = [
        RopaCategory(code=c.code, name=c.name, data_subjects=c.data_subjects, retention=c.retention,
                     legal_basis=c.legal_basis, statute=c.statute,
                     tables=sorted(t for t, code in PERSONAL_DATA_TABLES.items() if code == c.code))
        for c in profile.data_categories
    ]
    recipients = [_recipient(r) for r in profile.recipients]
    return RopaRead(
        version=version.number,
        updated_at=version.created_at,
        a_controller=profile.controller,
        b_purposes=[_purpose(p) for p in profile.purposes],
        c_data_subjects=profile.data_subjects,
        c_data_categories=categories,
        d_recipients=recipients,
        e_third_country_transfers=[r for r in recipients if r.third_country],
        f_erasure_time_limits={c.code: c.retention for c in profile.data_categories},
        g_security_measures=profile.security_measures,
    )

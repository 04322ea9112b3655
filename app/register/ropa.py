"""The record of processing activities (GDPR Art. 30(1)).

Which tables hold a data category comes from the retention rules the domains declare (`app.wiring`), so the
record names the same tables the purge acts on; `tests/test_wiring.py` fails when a table holding personal data
has neither a rule nor an erasure step.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.humanize import LANGUAGES
from app.register import retention
from app.register.retention import RetentionRule
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

def _recipient(recipient: Recipient) -> RopaRecipient:
    return RopaRecipient(name=recipient.name, role=recipient.role, location=recipient.location,
                         third_country=recipient.location not in EU_EEA, safeguard=recipient.safeguard)


def _purpose(purpose: Purpose) -> RopaPurpose:
    """A purpose, how a person stops it, and for direct marketing what each channel rests on."""
    stop = "withdrawal" if purpose.legal_basis is LegalBasis.consent else ("objection" if purpose.objectable else "none")
    return RopaPurpose(code=purpose.code, name=purpose.name, legal_basis=purpose.legal_basis, retired=purpose.retired,
                       direct_marketing=purpose.direct_marketing, how_to_stop=stop,
                       marketing_channels=marketing_channels(purpose) if purpose.direct_marketing else None)


def build(version: RegisterVersionRead, *, rules: Sequence[RetentionRule]) -> RopaRead:
    """Art. 30(1) (a)-(g) from one version of the profile and the domains' retention rules."""
    profile = version.profile
    periods = retention.category_periods(profile, rules)
    categories = [
        RopaCategory(code=c.code, name=c.name, data_subjects=c.data_subjects,
                     retention=periods[c.code].duration if c.code in periods else c.retention,
                     start_event=periods[c.code].start if c.code in periods else None,
                     retention_words={lang: retention.period_words(periods[c.code], lang) for lang in LANGUAGES}
                     if c.code in periods else {},
                     legal_basis=c.legal_basis, statute=c.statute,
                     tables=sorted({t for rule in rules if rule.category == c.code for t in rule.tables}))
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
        f_erasure_time_limits={c.code: c.retention_words.get("en") or c.retention for c in categories},
        g_security_measures=profile.security_measures,
    )

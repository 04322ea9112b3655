"""The audience rule engine as a table: every combination of its inputs, against the law read row by row."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from app.consents.rules import Basis, PurposeRule, Reason, Subject, decide
from app.consents.state import State

TODAY = date(2026, 11, 29)
GUARDIAN_AGE = 13
BIRTHS = {"adult": date(1990, 5, 1), "child": date(2016, 5, 1), "unknown": None,
          # Turns 13 today: no longer a child (the age is computed on the evaluation day).
          "birthday": date(2013, 11, 29)}
ELECTRONIC, OTHER = ("email", "sms"), ("phone", "post")


def law(kind, status, born, state, given_by, sale, has_contact, channel, basis, marketing, soft):
    """The expected verdict, written as the ordered table of the issue (first matching line wins)."""
    child = kind == "person" and born == "child"
    table = [
        (status != "active", (False, None, Reason.not_active)),
        (state is State.objected, (False, None, Reason.objected)),  # GDPR Art. 21(3)
        (child and (marketing or basis == "consent") and not (state is State.granted and given_by == "guardian"),
         (False, None, Reason.child_without_guardian_grant)),  # GDPR Art. 8, Tietosuojalaki § 5
        (child and (marketing or basis == "consent"), (True, Basis.consent, Reason.admitted)),
        (state is State.withdrawn and (marketing or basis == "consent"), (False, None, Reason.withdrawn)),
        (basis == "consent" and state is not State.granted, (False, None, Reason.no_consent)),
        (basis == "consent", (True, Basis.consent, Reason.admitted)),
        (not marketing, (True, Basis(basis), Reason.admitted)),
        (state is State.granted, (True, Basis.consent, Reason.admitted)),
        (kind == "organisation", (True, Basis.business_opt_out, Reason.admitted)),  # 917/2014 § 201
        (channel in OTHER, (True, Basis.objection_regime, Reason.admitted)),  # § 200(3)
        (soft and sale, (True, Basis.soft_opt_in, Reason.admitted)),  # § 200(2)
        (True, (False, None, Reason.no_consent)),  # § 200(1)
    ]
    admitted, basis_, reason = next(outcome for matches, outcome in table if matches)
    if admitted and not has_contact:
        return False, None, Reason.no_contact
    return admitted, basis_, reason


COMBINATIONS = list(itertools.product(
    ["person", "organisation"], ["active", "restricted", "erased"], list(BIRTHS), list(State), ["self", "guardian", None],
    [False, True], [True, False], ELECTRONIC + OTHER, ["consent", "legitimate_interest", "contract"], [True, False],
    [True, False]))


def test_every_combination_follows_the_table():
    checked = 0
    for kind, status, born, state, given_by, sale, has_contact, channel, basis, marketing, soft in COMBINATIONS:
        if soft and not marketing:
            continue  # the profile refuses soft_opt_in on a purpose that is not direct marketing
        subject = Subject(kind=kind, status=status, date_of_birth=BIRTHS[born], state=state, given_by=given_by,
                          sale_with_opt_out=sale, has_contact=has_contact)
        rule = PurposeRule(channel=channel, legal_basis=basis, direct_marketing=marketing, soft_opt_in=soft)
        verdict = decide(subject, rule, today=TODAY, guardian_age=GUARDIAN_AGE)
        expected = law(kind, status, born, state, given_by, sale, has_contact, channel, basis, marketing, soft)
        assert (verdict.admitted, verdict.basis, verdict.reason) == expected, (
            kind, status, born, state, given_by, sale, has_contact, channel, basis, marketing, soft)
        checked += 1
    assert checked > 10_000


def _verdict(**facts):
    subject = Subject(**{"kind": "person", "status": "active", "date_of_birth": BIRTHS["adult"], "state": State.none,
                         "given_by": None, "sale_with_opt_out": False, **facts.pop("subject", {})})
    rule = PurposeRule(**{"channel": "email", "legal_basis": "legitimate_interest", "direct_marketing": True,
                          "soft_opt_in": True, **facts})
    v = decide(subject, rule, today=TODAY, guardian_age=GUARDIAN_AGE)
    return v.basis if v.admitted else v.reason


@pytest.mark.parametrize(("case", "facts", "expected"), [
    ("prospect who never bought or consented", {}, Reason.no_consent),
    ("customer with a sale that offered the refusal", {"subject": {"sale_with_opt_out": True}}, Basis.soft_opt_in),
    ("same customer, purpose not marked own similar products", {"subject": {"sale_with_opt_out": True},
                                                                "soft_opt_in": False}, Reason.no_consent),
    ("same customer, but withdrew since", {"subject": {"sale_with_opt_out": True, "state": State.withdrawn}},
     Reason.withdrawn),
    ("same customer by SMS", {"subject": {"sale_with_opt_out": True}, "channel": "sms"}, Basis.soft_opt_in),
    ("consented person", {"subject": {"state": State.granted, "given_by": "self"}}, Basis.consent),
    ("objected person, even with a sale", {"subject": {"state": State.objected, "sale_with_opt_out": True}},
     Reason.objected),
    ("ten-year-old who granted alone", {"subject": {"date_of_birth": BIRTHS["child"], "state": State.granted,
                                                    "given_by": "self"}}, Reason.child_without_guardian_grant),
    ("ten-year-old with the guardian's grant", {"subject": {"date_of_birth": BIRTHS["child"], "state": State.granted,
                                                            "given_by": "guardian"}}, Basis.consent),
    ("child by post without a grant", {"subject": {"date_of_birth": BIRTHS["child"]}, "channel": "post"},
     Reason.child_without_guardian_grant),
    ("child with a sale (no soft opt-in for children)", {"subject": {"date_of_birth": BIRTHS["child"],
                                                                     "sale_with_opt_out": True}},
     Reason.child_without_guardian_grant),
    ("turns 13 today", {"subject": {"date_of_birth": BIRTHS["birthday"], "state": State.granted, "given_by": "self"}},
     Basis.consent),
    ("person by post", {"channel": "post"}, Basis.objection_regime),
    ("person called by a person", {"channel": "phone"}, Basis.objection_regime),
    ("organisation by email", {"subject": {"kind": "organisation"}}, Basis.business_opt_out),
    ("organisation that refused", {"subject": {"kind": "organisation", "state": State.withdrawn}}, Reason.withdrawn),
    ("restricted registrant who consented", {"subject": {"status": "restricted", "state": State.granted}},
     Reason.not_active),
    ("consent-based newsletter without a grant", {"legal_basis": "consent", "soft_opt_in": False,
                                                  "subject": {"sale_with_opt_out": True}}, Reason.no_consent),
    ("organisation under a consent-based purpose", {"legal_basis": "consent", "soft_opt_in": False,
                                                    "subject": {"kind": "organisation"}}, Reason.no_consent),
    ("contract purpose, no marketing", {"legal_basis": "contract", "direct_marketing": False, "soft_opt_in": False},
     Basis.contract),
    ("no address for the channel", {"subject": {"state": State.granted, "has_contact": False}}, Reason.no_contact),
])
def test_named_cases(case, facts, expected):
    assert _verdict(**facts) == expected, case

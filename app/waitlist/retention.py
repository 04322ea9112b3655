"""Retention of the waitlist (UniikkiLista)."""

from __future__ import annotations

from app.register.retention import RetentionRule
from app.waitlist import repository as repo

RULES = (RetentionRule(category="waitlist_entries", table="waitlist_entry", count=repo.count_ended,
                       delete=repo.delete_ended),)

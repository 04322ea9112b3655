"""The PostgreSQL one-statement audit write hashes the same canonical JSON as `entry_hash`."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import pytest

from app.audit.service import _canonical_parts, entry_hash


@pytest.mark.parametrize("name", ['Äiti "Ö" \\ Meikäläinen', "@prev-x@ @seq-y@", "日本", None])
def test_parts_rebuild_the_hashed_text(name):
    entry = {"id": uuid.uuid4(), "at": datetime(2026, 11, 22, 4, 0, 0, 123456, tzinfo=UTC), "actor_type": "user",
             "actor_id": "x", "actor_name": name, "role": "staff", "action": "registrant.read",
             "resource_type": "registrant", "resource_id": None, "registrant_ids": [str(uuid.uuid4())],
             "request_id": "r", "client_addr": "198.51.100.7", "outcome": "success", "details": {"ö": [1, name]}}
    before_prev, before_seq, after_seq = _canonical_parts(entry)
    entry.update(seq=1234567, prev_hash="ab" * 32)
    text = before_prev + entry["prev_hash"] + before_seq + str(entry["seq"]) + after_seq
    assert hashlib.sha256(text.encode()).hexdigest() == entry_hash(entry)

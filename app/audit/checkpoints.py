"""Signed checkpoints of the audit chain (GDPR Art. 5(2), 32(1)(b)): the sealed head's sequence number and
hash, signed with an Ed25519 key the database never holds.

Anyone who can write to the database can rewrite the chain and recompute every later hash, and the chain
alone still verifies. A checkpoint kept elsewhere (exported with `rekisteri audit-checkpoints export` to the
DPO's mailbox or write-once storage) pins the chain up to its sequence number: a rewrite, a reordering or a
truncation of anything it covers changes the hash at that number, or removes it, and
`rekisteri audit-verify --checkpoints FILE` fails. The signature shows the checkpoint itself came from the
sequencer's key. Like Certificate Transparency's signed tree heads, for a hash chain.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from app.audit.models import AuditCheckpoint, AuditHead

CHECKPOINT, HEAD = AuditCheckpoint.__table__, AuditHead.__table__
_DOMAIN = "rekisteri-audit-checkpoint v1"


def statement(seq: int, chain_hash: str, at: datetime) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    return f"{_DOMAIN}\n{seq}\n{chain_hash}\n{at.isoformat()}\n".encode()


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """The sequencer's signing key."""

    private: Ed25519PrivateKey

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        """Load a PEM (PKCS#8) Ed25519 private key."""
        key = load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the audit signing key must be an Ed25519 private key")
        return cls(key)

    @property
    def public_key(self) -> str:
        """The raw public key, base64."""
        return base64.b64encode(self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()

    @property
    def key_id(self) -> str:
        """The fingerprint of the public key."""
        return key_id(self.private.public_key())

    def sign(self, seq: int, chain_hash: str, at: datetime) -> str:
        """The base64 signature of a checkpoint."""
        return base64.b64encode(self.private.sign(statement(seq, chain_hash, at))).decode()


def make_if_due(conn: Connection, signer: Signer, *, now: datetime, every: int, interval: timedelta) -> int | None:
    """Sign the sealed head when `every` entries were sealed since the last checkpoint, or `interval` passed with
    any sealed; the caller holds the sealer's lock (or SQLite's write lock). The checkpoint's sequence, or None."""
    seq, chain_hash = conn.execute(select(HEAD.c.last_seq, HEAD.c.last_hash).where(HEAD.c.id == 1)).one()
    last = conn.execute(select(CHECKPOINT.c.seq, CHECKPOINT.c.at).order_by(CHECKPOINT.c.seq.desc()).limit(1)).first()
    if seq == 0 or (last is not None and seq <= last.seq):
        return None
    if last is not None and seq - last.seq < every and now - last.at < interval:
        return None
    conn.execute(insert(CHECKPOINT).values(seq=seq, hash=chain_hash, at=now, public_key=signer.public_key,
                                           key_id=signer.key_id, signature=signer.sign(seq, chain_hash, now)))
    return seq


def export_line(row: Any) -> str:
    """One checkpoint as a JSON line, with the public key that verifies it."""
    return json.dumps({"seq": row.seq, "hash": row.hash, "at": row.at.isoformat(), "key_id": row.key_id,
                       "public_key": row.public_key, "signature": row.signature}, separators=(",", ":"))


def exported(conn: Connection, *, since: int = 0) -> list[str]:
    """The checkpoints from sequence `since` on, oldest first, as JSON lines."""
    rows = conn.execute(select(CHECKPOINT).where(CHECKPOINT.c.seq >= since).order_by(CHECKPOINT.c.seq)).all()
    return [export_line(row) for row in rows]


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back from an exported file."""

    seq: int
    hash: str
    at: datetime
    key_id: str
    public_key: str
    signature: str

    @classmethod
    def parse(cls, line: str) -> Checkpoint:
        """One exported JSON line."""
        data = json.loads(line)
        return cls(seq=int(data["seq"]), hash=str(data["hash"]), at=datetime.fromisoformat(data["at"]),
                   key_id=str(data["key_id"]), public_key=str(data["public_key"]), signature=str(data["signature"]))

    def signature_ok(self) -> bool:
        """Whether the signature is the key's, over this sequence number, hash and time."""
        try:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key))
            public.verify(base64.b64decode(self.signature), statement(self.seq, self.hash, self.at))
        except (InvalidSignature, ValueError):
            return False
        return key_id(public) == self.key_id


def load_signer(path: Path, *, create: bool) -> Signer:
    """The signing key from its file; in development (`create`) a new key is made once and kept there, readable only
    by its owner, like the JWT secret. Written beside and linked into place, so processes starting together agree."""
    if not path.exists() and create:
        pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first; use theirs
        finally:
            temporary.unlink()
    return Signer.from_pem(path.read_bytes())


def parse_file(text: str) -> list[Checkpoint]:
    """Every checkpoint line of an exported file (blank lines skipped)."""
    return [Checkpoint.parse(line) for line in text.splitlines() if line.strip()]

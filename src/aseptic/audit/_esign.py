"""Electronic signatures (21 CFR 11.50, 11.70, 11.100, 11.200): manifestation, binding, verification.

A signature names the signer (unique identity and printed full name), the UTC time, the meaning
(authored, reviewed, approved, responsible) and the SHA-256 of the record's canonical bytes, so
it is bound to exactly one version of one record (11.70: it cannot be copied to another). The
statement - every field but the signature - is canonical JSON signed by the site key (hybrid
Ed25519 + ML-DSA-65 where the site key is hybrid), so the whole manifestation verifies offline
with ``site.pub``; it is logged as a ``signature`` leaf, so it is also in the Merkle log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aseptic.audit._entry import check_record_id
from aseptic.clock import ensure_utc, format_rfc3339, parse_rfc3339
from aseptic.crypto import PublicKey, SigningKey
from aseptic.errors import InputError, SignatureError
from aseptic.ledger import canonical_json

__all__ = [
    "ELECTRONIC_SIGNATURE",
    "MEANINGS",
    "ElectronicSignature",
    "record_digest",
    "sign_record",
    "verify_signature",
]

ELECTRONIC_SIGNATURE = "electronic_signature"
MEANINGS = ("approved", "authored", "responsible", "reviewed")
_FIELDS = (
    "entry",
    "record",
    "record_sha256",
    "signer",
    "printed_name",
    "meaning",
    "when",
    "clock_sync",
    "factors",
    "session",
    "system",
    "key_id",
    "algorithm",
)


def record_digest(content: bytes | Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a record's canonical bytes: canonical JSON for a JSON object (so formatting
    does not matter, content does), else the bytes exactly."""
    if isinstance(content, Mapping):
        data = canonical_json(content)
    else:
        data = content
        try:
            decoded = json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            decoded = None
        if isinstance(decoded, dict):
            data = canonical_json(decoded)
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ElectronicSignature:
    """The manifestation of one electronic signature, and the site key's signature over it."""

    record: str
    record_sha256: str
    signer: str
    printed_name: str
    meaning: str
    when: datetime
    clock_sync: str
    factors: tuple[str, ...]
    session: str | None
    system: str
    key_id: str
    algorithm: str
    signature: bytes = b""

    def statement(self) -> bytes:
        """The signed bytes: canonical JSON of every field but ``signature``."""
        return canonical_json(self._fields())

    def _fields(self) -> dict[str, Any]:
        return {
            "entry": ELECTRONIC_SIGNATURE,
            "record": self.record,
            "record_sha256": self.record_sha256,
            "signer": self.signer,
            "printed_name": self.printed_name,
            "meaning": self.meaning,
            "when": format_rfc3339(self.when),
            "clock_sync": self.clock_sync,
            "factors": list(self.factors),
            "session": self.session,
            "system": self.system,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
        }

    def to_payload(self) -> dict[str, Any]:
        """The ``signature`` leaf: the statement's fields and ``signature`` in base64."""
        return {**self._fields(), "signature": base64.b64encode(self.signature).decode("ascii")}

    def manifestation(self) -> str:
        """The human-readable line shown with the record (11.50(a))."""
        return (
            f"{self.meaning.capitalize()} by {self.printed_name} ({self.signer}) at "
            f"{format_rfc3339(self.when)} - record {self.record} sha256:{self.record_sha256[:16]}..."
        )

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ElectronicSignature:
        """Read a logged signature back (nothing is verified here: see ``verify_signature``).

        Raises:
            InputError: not an electronic signature, or a field is missing or malformed.
        """
        missing = sorted(set((*_FIELDS, "signature")) - set(payload))
        if payload.get("entry") != ELECTRONIC_SIGNATURE or missing:
            raise InputError(f"not an electronic signature entry (missing {missing})")
        try:
            return cls(
                record=str(payload["record"]),
                record_sha256=str(payload["record_sha256"]),
                signer=str(payload["signer"]),
                printed_name=str(payload["printed_name"]),
                meaning=str(payload["meaning"]),
                when=parse_rfc3339(str(payload["when"])),
                clock_sync=str(payload["clock_sync"]),
                factors=tuple(str(f) for f in payload["factors"]),
                session=None if payload["session"] is None else str(payload["session"]),
                system=str(payload["system"]),
                key_id=str(payload["key_id"]),
                algorithm=str(payload["algorithm"]),
                signature=base64.b64decode(str(payload["signature"]), validate=True),
            )
        except (ValueError, TypeError, binascii.Error) as exc:
            raise InputError(f"electronic signature entry is malformed: {exc}") from None


def sign_record(
    *,
    record: str,
    content: bytes | Mapping[str, Any],
    signer: str,
    printed_name: str,
    meaning: str,
    when: datetime,
    clock_sync: str,
    factors: Sequence[str],
    session: str | None,
    system: str,
    site_key: SigningKey,
) -> ElectronicSignature:
    """The signed manifestation of ``signer``'s signature on ``content`` (the signer must already be
    authenticated: ``IdentityStore.authenticate_for_signature``).

    Raises:
        InputError: unknown meaning, malformed record id, or no printed name.
    """
    check_record_id(record)
    if meaning not in MEANINGS:
        raise InputError(f"signature meaning {meaning!r} is not one of {', '.join(MEANINGS)}")
    if not printed_name.strip():
        raise InputError(f"signer {signer!r} has no printed name (11.50(a)(1))")
    unsigned = ElectronicSignature(
        record=record,
        record_sha256=record_digest(content),
        signer=signer,
        printed_name=printed_name.strip(),
        meaning=meaning,
        when=ensure_utc(when),
        clock_sync=clock_sync,
        factors=tuple(factors),
        session=session,
        system=system,
        key_id=site_key.key_id,
        algorithm=site_key.algorithm,
    )
    return replace(unsigned, signature=site_key.sign(unsigned.statement()))


def verify_signature(
    signature: ElectronicSignature,
    *,
    content: bytes | Mapping[str, Any] | None = None,
    record: str | None = None,
    trusted_keys: Sequence[PublicKey],
) -> None:
    """Check a signature's manifestation offline: signed by a trusted site key (so meaning, signer,
    time and record digest are as signed) and, given the record, bound to exactly that record.

    Raises:
        SignatureError: unknown key, an edited field (the site signature fails), a signature made
            for another record id or another version of the record, or an unknown meaning.
    """
    where = f"signature by {signature.signer!r} ({signature.meaning}) on {signature.record}"
    key = next((k for k in trusted_keys if k.key_id == signature.key_id), None)
    if key is None:
        raise SignatureError(
            f"{where}: signed by key {signature.key_id}, not one of the trusted keys "
            f"({', '.join(k.key_id for k in trusted_keys) or 'none given'})",
            hint="verify with the site's public key (site.pub) or a retired site key",
        )
    if key.algorithm != signature.algorithm:
        raise SignatureError(f"{where}: names algorithm {signature.algorithm}, the key is {key.algorithm}")
    key.verify(signature.signature, signature.statement(), what=where)
    if signature.meaning not in MEANINGS:
        raise SignatureError(f"{where}: meaning {signature.meaning!r} is not one of {MEANINGS}")
    if record is not None and record != signature.record:
        raise SignatureError(f"{where}: the signature is for record {signature.record}, not {record}")
    if content is not None:
        computed = record_digest(content)
        if computed != signature.record_sha256:
            raise SignatureError(
                f"{where}: bound to record digest {signature.record_sha256}, "
                f"this record's digest is {computed} (another record, or the record changed)"
            )

"""What a log leaf holds: its kind, its bytes, and the historian rows derived from an envelope.

Every leaf's data is ``kind || 0x00 || payload`` (the kind in ASCII), so an envelope can never be
passed off as a finding with the same bytes. The payload of each kind:

- ``envelope``: the envelope's bytes exactly as received (``Envelope.to_bytes`` of the sender);
- ``finding``: canonical JSON of the finding (``canonical_json``);
- ``quarantine``: the quarantine event's canonical bytes, as telemetry encodes them;
- ``key``: canonical JSON ``{"algorithm", "name", "public_key"}`` of a collector's public key, so
  that envelope signatures can be checked against keys that are themselves in the log;
- ``audit``: canonical JSON of a GMP audit-trail entry (who, what, old and new value, when, why);
- ``decision``: canonical JSON of an access decision (principal, action, resource, policies, reasons);
- ``signature``: canonical JSON of an electronic signature bound to a record digest.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import count, repeat
from typing import TYPE_CHECKING, Any

from aseptic.crypto import PublicKey
from aseptic.errors import InputError
from aseptic.ledger._tree import Hash

if TYPE_CHECKING:  # not imported at run time: the append process (ADR 0360) loads this module alone
    from aseptic.telemetry import Envelope

__all__ = [
    "EPOCH",
    "JSON_KINDS",
    "TABLE_OF_KIND",
    "LeafKind",
    "ReadingRow",
    "canonical_json",
    "decode_key_payload",
    "encode_key_payload",
    "hash_entry",
    "micros_of",
    "reading_rows",
    "same_value",
    "time_of",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


class LeafKind(StrEnum):
    """The closed set of things the log holds."""

    ENVELOPE = "envelope"
    FINDING = "finding"
    QUARANTINE = "quarantine"
    KEY = "key"
    AUDIT = "audit"
    DECISION = "decision"
    SIGNATURE = "signature"


# The table that holds each kind's rows (docs/ledger.md).
TABLE_OF_KIND = {
    LeafKind.ENVELOPE: "envelopes",
    LeafKind.FINDING: "findings",
    LeafKind.QUARANTINE: "quarantine",
    LeafKind.KEY: "keys",
    LeafKind.AUDIT: "audit",
    LeafKind.DECISION: "decisions",
    LeafKind.SIGNATURE: "signatures",
}

# The kinds whose payload is canonical JSON and nothing more (checked by ``canonical_json``).
JSON_KINDS = frozenset({LeafKind.FINDING, LeafKind.AUDIT, LeafKind.DECISION, LeafKind.SIGNATURE})


_PREFIX = {kind: b"\x00" + kind.value.encode("ascii") + b"\x00" for kind in LeafKind}


def hash_entry(kind: LeafKind, payload: bytes) -> Hash:
    """The RFC 9162 leaf hash of an entry: ``SHA-256(0x00 || kind || 0x00 || payload)``."""
    digest = hashlib.sha256(_PREFIX[kind])
    digest.update(payload)
    return Hash(digest.digest())


# (leaf, position, tag, time_us, value, quality, source): one row of the readings table.
ReadingRow = tuple[int, int, str, int, float | None, int, str]


def micros_of(when: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float rounding)."""
    return (when - EPOCH) // _ONE_US


def time_of(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def reading_rows(leaf: int, envelope: Envelope) -> list[ReadingRow]:
    """The historian rows of an envelope's readings. NaN is stored as NULL (SQLite has no NaN)."""
    c = envelope.reading_columns()
    values: Iterable[float | None] = c.values
    if any(map(math.isnan, c.values)):
        values = [None if math.isnan(value) else value for value in c.values]
    # zip builds the row tuples in C: this runs for every reading logged (see benchmarks/ledger_append.py).
    return list(zip(repeat(leaf), count(), c.tags, c.times_us, values, c.qualities, c.sources, strict=False))


def same_value(stored: float | None, decoded: float) -> bool:
    """Whether a stored value is the decoded one (NULL stands for NaN; SQLite keeps no -0.0)."""
    if stored is None:
        return math.isnan(decoded)
    return stored == decoded


def canonical_json(payload: Mapping[str, Any] | bytes) -> bytes:
    """Canonical JSON: sorted keys, no white space, UTF-8, no NaN or infinity.

    ``bytes`` are accepted only if they already are the canonical encoding of a JSON object.

    Raises:
        InputError: not a JSON object, not encodable, or bytes that are not canonical.
    """
    if isinstance(payload, bytes):
        try:
            decoded = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"finding payload is not JSON: {exc}") from None
        if not isinstance(decoded, dict):
            raise InputError(f"finding payload must be a JSON object, got {type(decoded).__name__}")
        canonical = canonical_json(decoded)
        if canonical != payload:
            raise InputError(
                "finding payload bytes are not canonical JSON",
                hint="pass a mapping, or sorted keys, no spaces",
            )
        return canonical
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"finding payload cannot be encoded as JSON: {exc}") from None
    return text.encode("utf-8")


def encode_key_payload(name: str, public_key: PublicKey) -> bytes:
    """The ``key`` entry of collector ``name``."""
    return canonical_json(
        {"algorithm": public_key.algorithm, "name": name, "public_key": public_key.raw.hex()}
    )


def decode_key_payload(payload: bytes) -> tuple[str, PublicKey]:
    """Read a ``key`` entry back.

    Raises:
        InputError: the payload is not a canonical key entry.
    """
    fields = json.loads(canonical_json(payload))
    if set(fields) != {"algorithm", "name", "public_key"}:
        raise InputError(f"key entry has fields {sorted(fields)}, expected algorithm, name, public_key")
    try:
        raw = bytes.fromhex(fields["public_key"])
    except (TypeError, ValueError):
        raise InputError("key entry: public_key is not hex") from None
    return str(fields["name"]), PublicKey.from_raw(str(fields["algorithm"]), raw)

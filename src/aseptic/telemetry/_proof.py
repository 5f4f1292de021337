"""Proof that one reading is in a signed envelope: its leaf bytes, audit path and the digest binding.

A verifier needs only the reading, its index, the ``ReadingProof`` and a digest it already trusts
(signed by the source, or logged in the ledger): it rebuilds the Merkle root from the audit path,
then the digest from the header fields in the proof, and compares. The header fields need no
trust of their own: they are hashed into the digest that must match.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from aseptic.errors import InputError, ProofError
from aseptic.telemetry._merkle import hash_leaf, root_from_path
from aseptic.telemetry._reading import Quality, Reading
from aseptic.telemetry._wire import (
    CANONICAL_NAN,
    DIGEST_SIZE,
    LEAF_TAIL,
    MAGIC,
    U16,
    U32,
    U64,
    VERSIONS,
    encode_text,
    time_to_us,
)

__all__ = ["SIGNING_CONTEXT", "ReadingProof", "compute_digest", "reading_leaf_bytes", "verify_reading"]

# Signatures are over this context string followed by the digest, so that an edge key's signature
# over an envelope can never be passed off as a signature over anything else of 32 bytes.
SIGNING_CONTEXT = b"aseptic envelope signature\x00"


def compute_digest(
    version: int, source_text: bytes, sequence: int, previous_digest: bytes, count: int, root: bytes
) -> bytes:
    """The signed digest; ``source_text`` is the source as on the wire (u8 length || UTF-8).

    ``SHA-256("ASEV" || u16 version || source || u64 sequence || previous digest || u32 count ||
    root)``. The preimage starts with ``A`` (0x41), never 0x00 or 0x01, so it cannot be confused
    with a Merkle leaf or node.
    """
    return hashlib.sha256(
        MAGIC
        + U16.pack(version)
        + source_text
        + U64.pack(sequence)
        + previous_digest
        + U32.pack(count)
        + root
    ).digest()


def reading_leaf_bytes(reading: Reading) -> bytes:
    """The canonical bytes of one reading, as hashed into its envelope's Merkle tree.

    ``u8 len || tag || u8 len || source || i64 time (us since 1970, UTC) || f64 value || u8 quality``,
    big-endian; any NaN is the canonical ``7ff8000000000000``.

    Raises:
        InputError: the tag or source is empty, longer than 255 bytes in UTF-8, or not Unicode.
    """
    value = float(reading.value)
    return (
        encode_text(reading.tag, what="tag")
        + encode_text(reading.source, what="reading source")
        + LEAF_TAIL.pack(
            time_to_us(reading.time),
            CANONICAL_NAN if value != value else value,
            int(Quality(reading.quality)),
        )
    )


@dataclass(frozen=True, slots=True)
class ReadingProof:
    """The audit path of one reading and the envelope header it is bound to."""

    version: int
    source: str
    sequence: int
    previous_digest: bytes
    reading_count: int
    path: tuple[bytes, ...]


def verify_reading(reading: Reading | bytes, index: int, proof: ReadingProof, digest: bytes) -> None:
    """Check that ``reading`` (or its leaf bytes) is reading ``index`` of the envelope with ``digest``.

    ``digest`` must come from somewhere trusted (a verified envelope signature, the ledger); the
    proof's own fields are not trusted, they only have to reproduce it.

    Raises:
        ProofError: the reading, index, path or header does not reproduce ``digest``.
    """
    what = f"reading {index} of envelope {proof.sequence} from {proof.source!r}"
    if proof.version not in VERSIONS:
        raise ProofError(f"{what}: unknown encoding version {proof.version} (known: {VERSIONS})")
    if len(proof.previous_digest) != DIGEST_SIZE or len(digest) != DIGEST_SIZE:
        raise ProofError(f"{what}: digests are {DIGEST_SIZE} bytes")
    if not 1 <= proof.sequence < 2**64 or not 1 <= proof.reading_count < 2**32:
        raise ProofError(f"{what}: sequence or reading count out of range")
    try:
        source_text = encode_text(proof.source, what="envelope source")
        leaf = reading if isinstance(reading, bytes) else reading_leaf_bytes(reading)
    except InputError as exc:
        raise ProofError(f"{what}: {exc}") from None
    root = root_from_path(hash_leaf(leaf), index, proof.reading_count, proof.path)
    computed = compute_digest(
        proof.version, source_text, proof.sequence, proof.previous_digest, proof.reading_count, root
    )
    if not hmac.compare_digest(computed, digest):
        raise ProofError(
            f"{what} does not prove: expected digest {digest.hex()}, computed {computed.hex()}",
            hint="the reading, its index or the proof was altered, or it belongs to another envelope",
        )

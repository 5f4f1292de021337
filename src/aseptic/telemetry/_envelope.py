"""The Envelope: a signed batch of readings from one source, and its canonical byte encoding (v1).

The signed digest is ``SHA-256(header || Merkle root over the readings)``; the byte layout, the
leaf bytes and the digest preimage are specified in docs/telemetry.md ("Byte encoding") and the
reasons in docs/adr/0030-envelope-encoding.md. Decoding is strict and canonical: one envelope has
exactly one encoding, so ``Envelope.from_bytes(raw).to_bytes() == raw`` for every accepted ``raw``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from aseptic.crypto import SigningKey
from aseptic.errors import InputError
from aseptic.telemetry._decode import decode
from aseptic.telemetry._merkle import audit_path, merkle_root
from aseptic.telemetry._proof import SIGNING_CONTEXT, ReadingProof, compute_digest
from aseptic.telemetry._reading import Reading
from aseptic.telemetry._table import Table, leaf_hashes, materialize, table_from_readings
from aseptic.telemetry._wire import (
    DIGEST_SIZE,
    MAGIC,
    MAX_SIGNATURE_BYTES,
    RECORD,
    U16,
    U32,
    U64,
    VERSION,
    encode_text,
    us_to_time,
)

__all__ = ["Envelope", "SignatureBlock"]


@dataclass(frozen=True, slots=True)
class SignatureBlock:
    """Who signed an envelope and how. Not covered by the digest: it carries the signature over it."""

    algorithm: str
    key_id: str
    signature: bytes

    def to_bytes(self) -> bytes:
        """``str8 algorithm || str8 key id || u16 length || signature``.

        Raises:
            InputError: an empty or over-long string or signature.
        """
        if not 1 <= len(self.signature) <= MAX_SIGNATURE_BYTES:
            raise InputError(f"a signature is 1 to {MAX_SIGNATURE_BYTES} bytes, got {len(self.signature)}")
        return (
            encode_text(self.algorithm, what="signature algorithm")
            + encode_text(self.key_id, what="key id")
            + U16.pack(len(self.signature))
            + self.signature
        )


class ReadingColumns(NamedTuple):
    """An envelope's readings, column by column (see ``Envelope.reading_columns``)."""

    tags: tuple[str, ...]
    sources: tuple[str, ...]
    times_us: tuple[int, ...]
    values: tuple[float, ...]
    qualities: tuple[int, ...]


class Envelope:
    """A batch of readings from one source, chained by sequence and previous digest, and signed.

    Build one with ``Envelope.seal`` (or ``EdgeSigner``) and parse one with ``Envelope.from_bytes``;
    both compute ``digest`` from the content, never trust one from the wire. Values are immutable.
    """

    __slots__ = (
        "_body",
        "_digest",
        "_leaves",
        "_previous_digest",
        "_raw",
        "_readings",
        "_sequence",
        "_signature",
        "_source",
        "_source_text",
        "_table",
        "_version",
    )

    def __init__(
        self,
        *,
        version: int,
        source: str,
        source_text: bytes,
        sequence: int,
        previous_digest: bytes,
        table: Table,
        body: bytes,
        records_at: int,
        signature: SignatureBlock | None,
        raw: bytes | None = None,
    ) -> None:
        self._version = version
        self._source = source
        self._source_text = source_text
        self._sequence = sequence
        self._previous_digest = previous_digest
        self._table = table
        self._body = body
        self._leaves = leaf_hashes(body, records_at, table)
        root = merkle_root(self._leaves)
        self._digest = compute_digest(version, source_text, sequence, previous_digest, len(table.tags), root)
        self._signature = signature
        self._raw = raw
        self._readings: tuple[Reading, ...] | None = None

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def seal(
        cls,
        *,
        source: str,
        sequence: int,
        previous_digest: bytes,
        readings: Iterable[Reading],
        key: SigningKey,
    ) -> Envelope:
        """Encode ``readings`` and sign the digest with ``key``.

        Raises:
            InputError: no readings or too many, a string that cannot be encoded (empty, longer than
                255 bytes, not Unicode), a sequence below 1, a previous digest not 32 bytes.
        """
        if not 1 <= sequence < 2**64:
            raise InputError(f"envelope sequence numbers start at 1 (u64), got {sequence}")
        if len(previous_digest) != DIGEST_SIZE:
            raise InputError(f"a previous digest is {DIGEST_SIZE} bytes, got {len(previous_digest)}")
        table = table_from_readings(tuple(readings))
        source_text = encode_text(source, what="envelope source")
        head = [MAGIC, U16.pack(VERSION), source_text, U64.pack(sequence), bytes(previous_digest)]
        head += [U16.pack(len(table.strings)), *table.encoded, U32.pack(len(table.tags))]
        head_bytes = b"".join(head)
        pack = RECORD.pack
        records = b"".join(
            pack(*row)
            for row in zip(
                table.tags, table.sources, table.times_us, table.values, table.qualities, strict=True
            )
        )
        unsigned = cls(
            version=VERSION,
            source=source,
            source_text=source_text,
            sequence=sequence,
            previous_digest=bytes(previous_digest),
            table=table,
            body=head_bytes + records,
            records_at=len(head_bytes),
            signature=None,
        )
        signature = SignatureBlock(key.algorithm, str(key.key_id), key.sign(unsigned.signing_message))
        return unsigned._signed(signature)

    def with_signature(self, signature: SignatureBlock) -> Envelope:
        """The same envelope (same digest) carrying ``signature`` instead: an external signer, rotation."""
        return self._signed(signature)

    def _signed(self, signature: SignatureBlock) -> Envelope:
        copy = Envelope.__new__(Envelope)
        for name in Envelope.__slots__:
            setattr(copy, name, getattr(self, name))
        copy._signature = signature
        copy._raw = self._body + signature.to_bytes()
        return copy

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Parse the canonical encoding; strict: anything else is an error, never a guess.

        Raises:
            InputError: bad magic, unknown version, truncation, trailing bytes, a count or length the
                input cannot hold, invalid UTF-8, a dictionary that is not canonical, a reference
                outside the dictionary, a quality other than 0-2, a time outside years 1-9999, a NaN
                other than the canonical one; the message names the byte offset and what was expected.
        """
        raw = raw if type(raw) is bytes else bytes(raw)
        parts = decode(raw)
        return cls(
            version=parts.version,
            source=parts.source,
            source_text=parts.source_text,
            sequence=parts.sequence,
            previous_digest=parts.previous_digest,
            table=parts.table,
            body=parts.body,
            records_at=parts.records_at,
            signature=SignatureBlock(*parts.signature),
            raw=raw,
        )

    # -- the envelope's content -------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    @property
    def source(self) -> str:
        return self._source

    @property
    def sequence(self) -> int:
        return self._sequence

    @property
    def previous_digest(self) -> bytes:
        return self._previous_digest

    @property
    def readings(self) -> tuple[Reading, ...]:
        if self._readings is None:
            self._readings = materialize(self._table)
        return self._readings

    def reading_columns(self) -> ReadingColumns:
        """The readings as columns (tag, source, time in microseconds since the Unix epoch UTC,
        value, quality code), position by position, without building ``Reading`` objects: for
        stores that write rows, where building and taking apart 250 objects per envelope would be
        most of the cost."""
        table, strings = self._table, self._table.strings
        return ReadingColumns(
            tuple(strings[i] for i in table.tags),
            tuple(strings[i] for i in table.sources),
            table.times_us,
            table.values,
            table.qualities,
        )

    @property
    def reading_count(self) -> int:
        return len(self._table.tags)

    @property
    def signature(self) -> SignatureBlock:
        if self._signature is None:  # only inside ``seal``, before signing
            raise RuntimeError("envelope is not signed yet")
        return self._signature

    @property
    def digest(self) -> bytes:
        """``SHA-256(header || Merkle root of the readings)``: what the source signs."""
        return self._digest

    @property
    def digest_hex(self) -> str:
        return self._digest.hex()

    @property
    def signing_message(self) -> bytes:
        """The exact bytes the source's key signs: a fixed context string, then the digest."""
        return SIGNING_CONTEXT + self._digest

    @property
    def latest_time(self) -> datetime:
        """The latest reading time in the envelope."""
        return us_to_time(max(self._table.times_us))

    def to_bytes(self) -> bytes:
        """The canonical encoding (the bytes ``from_bytes`` accepts)."""
        if self._raw is None:
            raise RuntimeError("envelope is not signed yet")
        return self._raw

    def reading_proof(self, index: int) -> ReadingProof:
        """An audit path proving reading ``index`` is in this envelope (check with ``verify_reading``).

        Raises:
            IndexError: there is no reading ``index``.
        """
        return ReadingProof(
            version=self._version,
            source=self._source,
            sequence=self._sequence,
            previous_digest=self._previous_digest,
            reading_count=len(self._leaves),
            path=audit_path(self._leaves, index),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Envelope) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        return (
            f"Envelope(source={self._source!r}, sequence={self._sequence}, "
            f"readings={self.reading_count}, digest={self._digest.hex()[:16]}...)"
        )

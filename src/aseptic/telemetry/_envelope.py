"""The Envelope: a signed batch of readings from one source, and its canonical byte encoding (v1).

The signed digest is ``SHA-256(header || Merkle root over the readings)``; the byte layout, the
leaf bytes and the digest preimage are specified in docs/telemetry.md ("Byte encoding") and the
reasons in docs/adr/0030-envelope-encoding.md. Decoding is strict and canonical: one envelope has
exactly one encoding, so ``Envelope.from_bytes(raw).to_bytes() == raw`` for every accepted ``raw``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from math import isnan
from typing import NamedTuple

from aseptic.crypto import SigningKey
from aseptic.errors import InputError
from aseptic.telemetry._merkle import audit_path, merkle_root
from aseptic.telemetry._proof import SIGNING_CONTEXT, ReadingProof, compute_digest
from aseptic.telemetry._reading import Quality, Reading
from aseptic.telemetry._wire import (
    CANONICAL_NAN,
    CANONICAL_NAN_BYTES,
    DIGEST_SIZE,
    MAGIC,
    MAX_DICTIONARY,
    MAX_READINGS,
    MAX_SIGNATURE_BYTES,
    MAX_TIME_US,
    MIN_TIME_US,
    RECORD,
    RECORD_SIZE,
    RECORD_TAIL_OFFSET,
    RECORD_TAIL_SIZE,
    U16,
    U32,
    U64,
    VERSION,
    VERSIONS,
    Reader,
    encode_text,
    time_to_us,
    us_to_time,
)

__all__ = ["Envelope", "SignatureBlock"]

_QUALITIES = tuple(Quality)
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class SignatureBlock:
    """Who signed an envelope and how. Not covered by the digest: it carries the signature over it."""

    algorithm: str
    key_id: str
    signature: bytes

    def to_bytes(self) -> bytes:
        if not 1 <= len(self.signature) <= MAX_SIGNATURE_BYTES:
            raise InputError(f"a signature is 1 to {MAX_SIGNATURE_BYTES} bytes, got {len(self.signature)}")
        return (
            encode_text(self.algorithm, what="signature algorithm")
            + encode_text(self.key_id, what="key id")
            + U16.pack(len(self.signature))
            + self.signature
        )


class _Table(NamedTuple):
    """The readings of an envelope as columns over a string dictionary (the wire's own shape)."""

    strings: tuple[str, ...]
    encoded: tuple[bytes, ...]  # each string as on the wire: u8 length || UTF-8
    tags: tuple[int, ...]
    sources: tuple[int, ...]
    times_us: tuple[int, ...]
    values: tuple[float, ...]
    qualities: tuple[int, ...]


def _leaf_hashes(body: bytes, records_at: int, table: _Table) -> list[bytes]:
    """``SHA-256(0x00 || tag || source || time, value, quality)`` per reading, read off the wire.

    The last 17 bytes of a wire record are exactly the tail of the leaf bytes, so they are hashed
    as they are, without decoding and re-encoding the numbers.
    """
    sha = _sha256
    encoded = table.encoded
    prefixes: dict[int, bytes] = {}
    leaves: list[bytes] = []
    append = leaves.append
    offset = records_at + RECORD_TAIL_OFFSET
    for tag, source in zip(table.tags, table.sources, strict=True):
        key = tag << 16 | source
        prefix = prefixes.get(key)
        if prefix is None:
            prefix = prefixes[key] = b"\x00" + encoded[tag] + encoded[source]
        append(sha(prefix + body[offset : offset + RECORD_TAIL_SIZE]).digest())
        offset += RECORD_SIZE
    return leaves


def _table_from_readings(readings: Sequence[Reading]) -> _Table:
    if not 1 <= len(readings) <= MAX_READINGS:
        raise InputError(f"an envelope carries 1 to {MAX_READINGS} readings, got {len(readings)}")
    index: dict[str, int] = {}
    strings: list[str] = []
    encoded: list[bytes] = []

    def ref(text: str, what: str) -> int:
        at = index.get(text)
        if at is None:
            at = index[text] = len(strings)
            strings.append(text)
            encoded.append(encode_text(text, what=what))
        return at

    times: dict[datetime, int] = {}
    tags, sources, times_us, values, qualities = [], [], [], [], []
    for reading in readings:
        tags.append(ref(reading.tag, "tag"))
        sources.append(ref(reading.source, "reading source"))
        us = times.get(reading.time)
        if us is None:
            us = times[reading.time] = time_to_us(reading.time)
        times_us.append(us)
        value = float(reading.value)
        values.append(CANONICAL_NAN if value != value else value)
        qualities.append(int(Quality(reading.quality)))
    if len(strings) > MAX_DICTIONARY:
        raise InputError(f"an envelope names at most {MAX_DICTIONARY} distinct tags and sources")
    return _Table(
        tuple(strings),
        tuple(encoded),
        tuple(tags),
        tuple(sources),
        tuple(times_us),
        tuple(values),
        tuple(qualities),
    )


def _materialize(table: _Table) -> tuple[Reading, ...]:
    strings = table.strings
    qualities = _QUALITIES
    times: dict[int, datetime] = {}
    out: list[Reading] = []
    append = out.append
    for tag, source, us, value, quality in zip(
        table.tags, table.sources, table.times_us, table.values, table.qualities, strict=True
    ):
        when = times.get(us)
        if when is None:
            when = times[us] = us_to_time(us)
        append(Reading(strings[tag], when, value, qualities[quality], strings[source]))
    return tuple(out)


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
        table: _Table,
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
        self._leaves = _leaf_hashes(body, records_at, table)
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
        table = _table_from_readings(tuple(readings))
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
            object.__setattr__(copy, name, getattr(self, name))
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
        return _decode(raw if type(raw) is bytes else bytes(raw))

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
            self._readings = _materialize(self._table)
        return self._readings

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


def _decode(raw: bytes) -> Envelope:
    r = Reader(raw)
    magic = r.take(len(MAGIC), f"the magic {MAGIC!r}")
    if magic != MAGIC:
        raise r.fail(f"the magic {MAGIC!r}", f"got {magic!r} (not an Aseptic envelope)", at=0)
    version = r.unpack(U16, "the encoding version (u16)")
    if version not in VERSIONS:
        raise r.fail(f"a known encoding version {VERSIONS}", f"got version {version}", at=4)
    source, source_text = r.text("the source id")
    at = r.pos
    sequence = r.unpack(U64, "the sequence number (u64)")
    if sequence == 0:
        raise r.fail("a sequence number of 1 or more", "got 0", at=at)
    previous_digest = r.take(DIGEST_SIZE, "the previous digest")
    dictionary_at = r.pos
    size = r.unpack(U16, "the dictionary size (u16)")
    if size == 0:
        raise r.fail("a dictionary of 1 or more strings", "got 0", at=dictionary_at)
    # Each entry takes 2 bytes or more: refuse a count the input cannot hold before looping on it.
    r.need(2 * size, f"{size} dictionary strings")
    strings: list[str] = []
    encoded: list[bytes] = []
    for i in range(size):
        text, text_bytes = r.text(f"dictionary string {i}")
        strings.append(text)
        encoded.append(text_bytes)
    if len(set(strings)) != size:
        first = next(text for i, text in enumerate(strings) if text in strings[:i])
        raise r.fail("distinct dictionary strings", f"{first!r} is listed twice", at=dictionary_at)
    at = r.pos
    count = r.unpack(U32, "the reading count (u32)")
    if not 1 <= count <= MAX_READINGS:
        raise r.fail(f"a reading count of 1 to {MAX_READINGS}", f"got {count}", at=at)
    records_at = r.need(count * RECORD_SIZE, f"{count} readings of {RECORD_SIZE} bytes")
    r.pos = records_at + count * RECORD_SIZE
    columns = zip(*RECORD.iter_unpack(memoryview(raw)[records_at : r.pos]), strict=True)
    tags, sources, times_us, values, qualities = (tuple(c) for c in columns)
    table = _Table(tuple(strings), tuple(encoded), tags, sources, times_us, values, qualities)
    _check_records(r, table, records_at)
    body_end = r.pos
    algorithm, _ = r.text("the signature algorithm")
    key_id, _ = r.text("the signature key id")
    at = r.pos
    signature_size = r.unpack(U16, "the signature length (u16)")
    if signature_size == 0:
        raise r.fail("a signature of 1 or more bytes", "got length 0", at=at)
    signature = r.take(signature_size, "the signature")
    r.expect_end()
    return Envelope(
        version=version,
        source=source,
        source_text=source_text,
        sequence=sequence,
        previous_digest=previous_digest,
        table=table,
        body=raw[:body_end],
        records_at=records_at,
        signature=SignatureBlock(algorithm, key_id, signature),
        raw=raw,
    )


def _check_records(r: Reader, table: _Table, records_at: int) -> None:
    """Column-wise checks of the readings; the slow search for the culprit runs only on failure."""

    def at(i: int, field: int) -> int:
        return records_at + i * RECORD_SIZE + field

    size = len(table.strings)
    for field, column, name in ((0, table.tags, "tag"), (2, table.sources, "source")):
        if max(column) >= size:
            i = next(i for i, ref in enumerate(column) if ref >= size)
            raise r.fail(
                f"a {name} reference below the dictionary size {size}",
                f"reading {i} has {column[i]}",
                at=at(i, field),
            )
    if max(table.qualities) >= len(_QUALITIES):
        i = next(i for i, q in enumerate(table.qualities) if q >= len(_QUALITIES))
        raise r.fail(
            "a quality of 0 (good), 1 (uncertain) or 2 (bad)",
            f"reading {i} has {table.qualities[i]}",
            at=at(i, 20),
        )
    if min(table.times_us) < MIN_TIME_US or max(table.times_us) > MAX_TIME_US:
        i = next(i for i, t in enumerate(table.times_us) if not MIN_TIME_US <= t <= MAX_TIME_US)
        raise r.fail(
            "a time within years 1 to 9999 (int64 us since 1970)",
            f"reading {i} has {table.times_us[i]}",
            at=at(i, 4),
        )
    if any(map(isnan, table.values)):
        for i, value in enumerate(table.values):
            if isnan(value) and r.data[at(i, 12) : at(i, 20)] != CANONICAL_NAN_BYTES:
                raise r.fail("NaN encoded as 7ff8000000000000", f"reading {i} has another NaN", at=at(i, 12))
    first_use = list(dict.fromkeys(chain.from_iterable(zip(table.tags, table.sources, strict=True))))
    if first_use != list(range(size)):
        k = next((k for k, ref in enumerate(first_use) if ref != k), len(first_use))
        raise r.fail(
            "dictionary strings in the order the readings first use them, each used once or more",
            f"string {k} ({table.strings[k]!r}) is out of order or unused",
            at=records_at,
        )

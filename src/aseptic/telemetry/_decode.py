"""Strict decoding of the envelope encoding v1: every field checked, every error with its offset."""

from __future__ import annotations

from itertools import chain
from math import isnan
from typing import NamedTuple

from aseptic.telemetry._table import QUALITIES, Table
from aseptic.telemetry._wire import (
    CANONICAL_NAN_BYTES,
    DIGEST_SIZE,
    MAGIC,
    MAX_READINGS,
    MAX_TIME_US,
    MIN_TIME_US,
    RECORD,
    RECORD_SIZE,
    U16,
    U32,
    U64,
    VERSIONS,
    Reader,
)


class Decoded(NamedTuple):
    """The parts of a decoded envelope, before the digest is computed."""

    version: int
    source: str
    source_text: bytes
    sequence: int
    previous_digest: bytes
    table: Table
    body: bytes
    records_at: int
    signature: tuple[str, str, bytes]


def decode(raw: bytes) -> Decoded:
    """Parse and check the canonical encoding (see ``Envelope.from_bytes`` for what is refused)."""
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
    pos, end = r.pos, len(raw)
    for i in range(size):
        # The fast path of ``Reader.text``; anything unusual goes through it for the exact error.
        stop = pos + 1 + raw[pos] if pos < end else end + 1
        if pos + 1 < stop <= end:
            try:
                strings.append(raw[pos + 1 : stop].decode("utf-8"))
                encoded.append(raw[pos:stop])
                pos = stop
                continue
            except UnicodeDecodeError:
                pass
        r.pos = pos
        text, text_bytes = r.text(f"dictionary string {i}")
        strings.append(text)
        encoded.append(text_bytes)
        pos = r.pos
    r.pos = pos
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
    table = Table(tuple(strings), tuple(encoded), tags, sources, times_us, values, qualities)
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
    return Decoded(
        version=version,
        source=source,
        source_text=source_text,
        sequence=sequence,
        previous_digest=previous_digest,
        table=table,
        body=raw[:body_end],
        records_at=records_at,
        signature=(algorithm, key_id, signature),
    )


def _check_records(r: Reader, table: Table, records_at: int) -> None:
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
    if max(table.qualities) >= len(QUALITIES):
        i = next(i for i, q in enumerate(table.qualities) if q >= len(QUALITIES))
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

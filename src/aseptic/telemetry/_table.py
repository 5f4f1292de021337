"""The readings of an envelope as the wire holds them: columns over a string dictionary.

Built from ``Reading`` values when sealing, or read off the wire when decoding; the leaf hashes of
the Merkle tree are taken from the wire bytes, and ``Reading`` objects are built only on demand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from aseptic.clock import format_rfc3339
from aseptic.errors import InputError
from aseptic.telemetry._reading import Quality, Reading
from aseptic.telemetry._wire import (
    CANONICAL_NAN,
    MAX_DICTIONARY,
    MAX_READINGS,
    RECORD_SIZE,
    RECORD_TAIL_OFFSET,
    RECORD_TAIL_SIZE,
    encode_text,
    time_to_us,
    us_to_time,
)

QUALITIES = tuple(Quality)
QUALITY_CODES = frozenset(int(q) for q in Quality)
_sha256 = hashlib.sha256


class Table(NamedTuple):
    """The readings of an envelope as columns over a string dictionary (the wire's own shape)."""

    strings: tuple[str, ...]
    encoded: tuple[bytes, ...]  # each string as on the wire: u8 length || UTF-8
    tags: tuple[int, ...]
    sources: tuple[int, ...]
    times_us: tuple[int, ...]
    values: tuple[float, ...]
    qualities: tuple[int, ...]


def leaf_hashes(body: bytes, records_at: int, table: Table) -> list[bytes]:
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


def check_number(reading: Reading) -> None:
    """Check that ``reading`` has a value that converts to a float and a quality code 0-2.

    Raises:
        InputError: it has not; the message names the reading's tag and time.
    """
    where = f"reading of {reading.tag!r} at {format_rfc3339(reading.time)}"
    try:
        float(reading.value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: value {reading.value!r} is not a number") from None
    if isinstance(reading.quality, bool) or reading.quality not in QUALITY_CODES:
        raise InputError(f"{where}: quality {reading.quality!r} is not 0 (GOOD), 1 (UNCERTAIN) or 2 (BAD)")


def table_from_readings(readings: Sequence[Reading]) -> Table:
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
        try:
            value = float(reading.value)
            quality = int(Quality(reading.quality))
        except (TypeError, ValueError):
            check_number(reading)  # raises the InputError that names the reading
            raise
        values.append(CANONICAL_NAN if value != value else value)
        qualities.append(quality)
    if len(strings) > MAX_DICTIONARY:
        raise InputError(f"an envelope names at most {MAX_DICTIONARY} distinct tags and sources")
    return Table(
        tuple(strings),
        tuple(encoded),
        tuple(tags),
        tuple(sources),
        tuple(times_us),
        tuple(values),
        tuple(qualities),
    )


# Building a Reading through its dataclass __init__ costs twice what setting its five slots does,
# and decoded values need no re-validation (times are UTC, qualities in range): ``materialize``
# fills the slots directly. ``test_decoded_readings_equal_constructed_ones`` keeps this honest.
_new_object = object.__new__


def _slot_setter(name: str) -> Callable[[Reading, object], None]:
    setter: Callable[[Reading, object], None] = getattr(Reading, name).__set__
    return setter


_set_tag, _set_time, _set_value, _set_quality, _set_source = map(
    _slot_setter, ("tag", "time", "value", "quality", "source")
)


def materialize(table: Table) -> tuple[Reading, ...]:
    strings = table.strings
    qualities = QUALITIES
    times = {us: us_to_time(us) for us in set(table.times_us)}
    out: list[Reading] = []
    append = out.append
    for tag, source, us, value, quality in zip(
        table.tags, table.sources, table.times_us, table.values, table.qualities, strict=True
    ):
        reading = _new_object(Reading)
        _set_tag(reading, strings[tag])
        _set_time(reading, times[us])
        _set_value(reading, value)
        _set_quality(reading, qualities[quality])
        _set_source(reading, strings[source])
        append(reading)
    return tuple(out)

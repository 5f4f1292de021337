"""Byte-level reading and writing for the envelope encoding (docs/telemetry.md, "Byte encoding").

Big-endian integers, ``u8``-length-prefixed UTF-8 strings of 1 to 255 bytes. The reader checks every
length against what is left before it slices, so a hostile count or length can never make it
allocate more than the input it was given, and every error names the byte offset and what was
expected there.
"""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta

from aseptic.errors import InputError

MAGIC = b"ASEV"
VERSION = 1
VERSIONS = (VERSION,)
DIGEST_SIZE = 32
ZERO_DIGEST = b"\x00" * DIGEST_SIZE
MAX_STRING_BYTES = 255
MAX_DICTIONARY = 0xFFFF
MAX_READINGS = 100_000
MAX_SIGNATURE_BYTES = 0xFFFF

# One reading on the wire: tag ref u16, source ref u16, time i64 us, value f64, quality u8.
RECORD = struct.Struct(">HHqdB")
RECORD_SIZE = RECORD.size  # 21
# The part of a record that is also the tail of the reading's leaf bytes: time, value, quality.
RECORD_TAIL_OFFSET = 4
RECORD_TAIL_SIZE = RECORD_SIZE - RECORD_TAIL_OFFSET  # 17

U8 = struct.Struct(">B")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
LEAF_TAIL = struct.Struct(">qdB")

# The one NaN the encoding allows (positive quiet NaN): NaN payloads would otherwise make two
# encodings of "the same" reading with different digests.
CANONICAL_NAN = struct.unpack(">d", bytes.fromhex("7ff8000000000000"))[0]
CANONICAL_NAN_BYTES = bytes.fromhex("7ff8000000000000")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
MIN_TIME_US = (datetime.min.replace(tzinfo=UTC) - EPOCH) // ONE_US
MAX_TIME_US = (datetime.max.replace(tzinfo=UTC) - EPOCH) // ONE_US


def time_to_us(when: datetime) -> int:
    """Microseconds since 1970-01-01T00:00:00Z (exact: datetimes have microsecond resolution)."""
    return (when - EPOCH) // ONE_US


def us_to_time(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a C0 control character or DEL (never part of a tag or source name)."""
    return _CONTROL.search(text) is not None


def encode_text(text: str, *, what: str) -> bytes:
    """``u8 length || UTF-8``; 1 to 255 bytes.

    Raises:
        InputError: the text is empty, longer than 255 bytes in UTF-8, or not encodable.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} {text!r} is not valid Unicode ({exc.reason})") from None
    if has_control(text):
        raise InputError(
            f"{what} {text!r} holds a control character",
            hint="tags and sources are names: U+0000-U+001F and U+007F cannot be stored by every "
            "ledger store (PostgreSQL refuses U+0000) nor shown safely",
        )
    if not 1 <= len(data) <= MAX_STRING_BYTES:
        raise InputError(f"{what} {text!r} is {len(data)} bytes in UTF-8; allowed 1 to {MAX_STRING_BYTES}")
    return bytes((len(data),)) + data


class Reader:
    """A cursor over untrusted bytes; every read is bounds-checked and errors carry the offset."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, expected: str, problem: str, *, at: int | None = None) -> InputError:
        offset = self.pos if at is None else at
        return InputError(
            f"envelope is malformed at byte {offset}: expected {expected}; {problem}",
            hint="see docs/telemetry.md, 'Byte encoding'",
        )

    def need(self, size: int, expected: str) -> int:
        """Check that ``size`` bytes are left; return the current offset."""
        left = len(self.data) - self.pos
        if size > left:
            raise InputError(
                f"envelope is truncated at byte {self.pos}: expected {expected} ({size} bytes), "
                f"only {left} left of {len(self.data)}",
                hint="the message was cut short in transit or by an attacker",
            )
        return self.pos

    def take(self, size: int, expected: str) -> bytes:
        start = self.need(size, expected)
        self.pos = start + size
        return self.data[start : self.pos]

    def unpack(self, fmt: struct.Struct, expected: str) -> int:
        start = self.need(fmt.size, expected)
        self.pos = start + fmt.size
        value: int = fmt.unpack_from(self.data, start)[0]
        return value

    def text(self, expected: str) -> tuple[str, bytes]:
        """A ``u8``-length-prefixed UTF-8 string, with its encoded form (length byte included)."""
        start = self.pos
        size = self.unpack(U8, f"the length of {expected} (u8)")
        if size == 0:
            raise self.fail(f"{expected} (1 to {MAX_STRING_BYTES} bytes of UTF-8)", "got length 0", at=start)
        data = self.take(size, f"{expected} (UTF-8)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(
                f"{expected} in UTF-8", f"invalid byte at string offset {exc.start}", at=start + 1
            ) from None
        return text, self.data[start : self.pos]

    def expect_end(self) -> None:
        extra = len(self.data) - self.pos
        if extra:
            raise self.fail("end of input after the signature block", f"{extra} trailing byte(s)")

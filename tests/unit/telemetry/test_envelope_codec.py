"""Envelope encoding v1: round trips, a known-answer vector, and every malformed input refused."""

from __future__ import annotations

import hashlib
import math
import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telemetry_support import SOURCE, START, catalogue_readings, fixed_key

from aseptic.errors import InputError
from aseptic.telemetry import Envelope, Quality, Reading, reading_leaf_bytes

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "ALCOA-ORIGINAL", "A11-5")

ZERO = bytes(32)
KEY = fixed_key(7)


def seal(
    readings: list[Reading], *, sequence: int = 1, previous: bytes = ZERO, source: str = SOURCE
) -> Envelope:
    return Envelope.seal(
        source=source, sequence=sequence, previous_digest=previous, readings=readings, key=KEY
    )


def layout(envelope: Envelope) -> dict[str, int]:
    """Byte offsets of the v1 layout for ``envelope`` (docs/telemetry.md), to aim tampering."""
    source_len = len(envelope.source.encode())
    dictionary_at = 4 + 2 + 1 + source_len + 8 + 32
    raw = envelope.to_bytes()
    at = dictionary_at + 2
    for _ in range(struct.unpack_from(">H", raw, dictionary_at)[0]):
        at += 1 + raw[at]
    records_at = at + 4
    return {
        "sequence": 4 + 2 + 1 + source_len,
        "dictionary": dictionary_at,
        "count": at,
        "records": records_at,
        "signature_block": records_at + 21 * envelope.reading_count,
    }


def replace(raw: bytes, at: int, data: bytes) -> bytes:
    return raw[:at] + data + raw[at + len(data) :]


# -- round trips ------------------------------------------------------------------------------------

# Names: any Unicode text but control characters (U+0000-U+001F, U+007F), which sealing refuses
# (test_ingest_attacks covers that refusal).
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=[*map(chr, range(32)), "\x7f"]),
    min_size=1,
    max_size=60,
)
readings_strategy = st.lists(
    st.builds(
        Reading,
        tag=texts,
        time=st.datetimes(timezones=st.just(UTC)),
        value=st.floats(allow_nan=True, allow_infinity=True),
        quality=st.sampled_from(Quality),
        source=texts,
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    readings=readings_strategy,
    sequence=st.integers(1, 2**64 - 1),
    previous=st.binary(min_size=32, max_size=32),
)
def test_encode_decode_round_trip_is_exact(readings: list[Reading], sequence: int, previous: bytes) -> None:
    envelope = seal(readings, sequence=sequence, previous=previous)
    raw = envelope.to_bytes()
    decoded = Envelope.from_bytes(raw)
    assert decoded.to_bytes() == raw
    assert decoded.digest == envelope.digest
    assert (decoded.source, decoded.sequence, decoded.previous_digest) == (SOURCE, sequence, previous)
    assert decoded.signature == envelope.signature
    assert len(decoded.readings) == len(readings)
    for got, sent in zip(decoded.readings, readings, strict=True):
        assert (got.tag, got.source, got.time, got.quality) == (
            sent.tag,
            sent.source,
            sent.time,
            sent.quality,
        )
        assert got.time.tzinfo is UTC
        if math.isnan(sent.value):
            assert math.isnan(got.value)
        else:
            assert struct.pack(">d", got.value) == struct.pack(">d", sent.value)  # -0.0 keeps its sign
        assert reading_leaf_bytes(got) == reading_leaf_bytes(sent)


def test_decoding_sealed_readings_gives_the_same_readings() -> None:
    readings = catalogue_readings(250)
    decoded = Envelope.from_bytes(seal(readings).to_bytes())
    assert decoded.readings == tuple(readings)
    assert decoded == seal(readings)
    assert decoded.reading_count == 250
    assert decoded.latest_time == max(r.time for r in readings)


def test_decoded_readings_equal_constructed_ones() -> None:
    """Decoding fills Reading slots directly (for speed): the result must be a normal Reading."""
    sent = catalogue_readings(40)
    decoded = Envelope.from_bytes(seal(sent).to_bytes()).readings
    for got, want in zip(decoded, sent, strict=True):
        rebuilt = Reading(got.tag, got.time, got.value, got.quality, got.source)
        assert got == rebuilt == want and hash(got) == hash(want)
        assert type(got.quality) is Quality and got.time.tzinfo is UTC
        with pytest.raises(AttributeError):
            got.value = 0.0  # type: ignore[misc]


def test_dictionary_names_each_tag_and_source_once() -> None:
    readings = catalogue_readings(250)
    raw = seal(readings).to_bytes()
    assert raw.count(b"dissolved_o2_mg_per_l") == 1
    # 21 bytes a reading plus a small dictionary: far below a text or JSON encoding.
    assert len(raw) < 21 * 250 + 1200


def test_known_answer_vector() -> None:
    """Pins the v1 bytes and digest, rebuilt here from the spec alone (docs/telemetry.md).

    A change here is a new encoding version, never a silent change (ADR 0030).
    """
    readings = [
        Reading("ph", START, 6.5, Quality.GOOD, "AT-202"),
        Reading("temperature_k", START, 298.15, Quality.UNCERTAIN, "TIC-101"),
        Reading("ph", START + timedelta(seconds=1), math.nan, Quality.BAD, "AT-202"),
    ]
    envelope = seal(readings)
    t0 = (START - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    header = b"ASEV" + b"\x00\x01" + b"\x0ccollector-01" + (1).to_bytes(8, "big") + ZERO
    dictionary = b"\x00\x04" + b"\x02ph" + b"\x06AT-202" + b"\x0dtemperature_k" + b"\x07TIC-101"
    tails = [
        struct.pack(">qdB", t0, 6.5, 0),
        struct.pack(">qdB", t0, 298.15, 1),
        struct.pack(">qdB", t0 + 1_000_000, 0.0, 2)[:8] + bytes.fromhex("7ff8000000000000") + b"\x02",
    ]
    records = b"\x00\x00\x00\x03" + b"\x00\x00\x00\x01" + tails[0]
    records += b"\x00\x02\x00\x03" + tails[1] + b"\x00\x00\x00\x01" + tails[2]
    key_id = str(KEY.key_id).encode()
    signature_head = b"\x07ed25519" + bytes([len(key_id)]) + key_id + b"\x00\x40"
    raw = envelope.to_bytes()
    assert raw == header + dictionary + records + signature_head + envelope.signature.signature

    sha = hashlib.sha256
    leaves = [
        sha(b"\x00" + b"\x02ph" + b"\x06AT-202" + tails[0]).digest(),
        sha(b"\x00" + b"\x0dtemperature_k" + b"\x07TIC-101" + tails[1]).digest(),
        sha(b"\x00" + b"\x02ph" + b"\x06AT-202" + tails[2]).digest(),
    ]
    root = sha(b"\x01" + sha(b"\x01" + leaves[0] + leaves[1]).digest() + leaves[2]).digest()
    digest = sha(header + (3).to_bytes(4, "big") + root).digest()
    assert envelope.digest == digest
    assert envelope.digest_hex == "914986c45656612012cf545f42f260ee3e9915589ba34e060d87c96f874ac3aa"
    KEY.public.verify(envelope.signature.signature, b"aseptic envelope signature\x00" + digest, what="vector")
    assert len(raw) == 259


# -- strict decoding --------------------------------------------------------------------------------


def test_every_truncation_is_rejected_with_its_offset() -> None:
    raw = seal(catalogue_readings(12)).to_bytes()
    for length in range(len(raw)):
        with pytest.raises(InputError, match=r"at byte \d+") as caught:
            Envelope.from_bytes(raw[:length])
        assert "truncated" in str(caught.value) or "malformed" in str(caught.value)


def test_trailing_bytes_are_rejected() -> None:
    raw = seal(catalogue_readings(3)).to_bytes()
    with pytest.raises(InputError, match=rf"at byte {len(raw)}: expected end of input.*1 trailing byte"):
        Envelope.from_bytes(raw + b"\x00")


def test_bad_magic_is_rejected() -> None:
    raw = seal(catalogue_readings(3)).to_bytes()
    with pytest.raises(InputError, match=r"at byte 0: expected the magic b'ASEV'"):
        Envelope.from_bytes(b"ASEX" + raw[4:])


@pytest.mark.parametrize("version", [0, 2, 0xFFFF])
def test_unknown_version_is_rejected(version: int) -> None:
    raw = seal(catalogue_readings(3)).to_bytes()
    with pytest.raises(
        InputError, match=rf"at byte 4: expected a known encoding version.*got version {version}"
    ):
        Envelope.from_bytes(replace(raw, 4, struct.pack(">H", version)))


def test_huge_reading_count_is_refused_before_allocating() -> None:
    envelope = seal(catalogue_readings(3))
    raw, at = envelope.to_bytes(), layout(envelope)["count"]
    with pytest.raises(
        InputError, match=rf"at byte {at}: expected a reading count of 1 to 100000; got 4294967295"
    ):
        Envelope.from_bytes(replace(raw, at, b"\xff\xff\xff\xff"))
    with pytest.raises(
        InputError, match=r"truncated .*expected 100000 readings of 21 bytes \(2100000 bytes\)"
    ):
        Envelope.from_bytes(replace(raw, at, struct.pack(">I", 100_000)))


def test_huge_dictionary_count_is_refused_before_allocating() -> None:
    envelope = seal(catalogue_readings(3))
    raw, at = envelope.to_bytes(), layout(envelope)["dictionary"]
    with pytest.raises(InputError, match=r"truncated .*expected 65535 dictionary strings \(131070 bytes\)"):
        Envelope.from_bytes(replace(raw, at, b"\xff\xff"))


def test_huge_signature_length_is_truncation() -> None:
    raw = seal(catalogue_readings(3)).to_bytes()
    with pytest.raises(InputError, match=r"truncated .*expected the signature \(65535 bytes\)"):
        Envelope.from_bytes(raw[:-66] + b"\xff\xff" + raw[-64:])


def test_non_utf8_source_is_rejected_with_its_offset() -> None:
    raw = seal(catalogue_readings(3)).to_bytes()
    with pytest.raises(InputError, match=r"at byte 7: expected the source id in UTF-8; invalid byte"):
        Envelope.from_bytes(replace(raw, 7, b"\xc3\x28"))


def test_non_utf8_dictionary_string_is_rejected() -> None:
    envelope = seal(catalogue_readings(3))
    raw, at = envelope.to_bytes(), layout(envelope)["dictionary"] + 2
    with pytest.raises(InputError, match=rf"at byte {at + 1}: expected dictionary string 0 in UTF-8"):
        Envelope.from_bytes(replace(raw, at + 1, b"\xff"))


def test_empty_string_is_rejected() -> None:
    raw = seal(catalogue_readings(3)).to_bytes()
    with pytest.raises(InputError, match=r"at byte 6: expected the source id .*got length 0"):
        Envelope.from_bytes(raw[:6] + b"\x00" + raw[7 + raw[6] :])


def _with_dictionary(strings: list[bytes], records: list[tuple[int, int]]) -> bytes:
    """An envelope with a hand-made dictionary and references (signature irrelevant to decoding)."""
    body = b"ASEV\x00\x01\x0ccollector-01" + (1).to_bytes(8, "big") + ZERO
    body += struct.pack(">H", len(strings)) + b"".join(bytes([len(s)]) + s for s in strings)
    body += struct.pack(">I", len(records))
    body += b"".join(struct.pack(">HHqdB", tag, source, 0, 1.0, 0) for tag, source in records)
    return body + b"\x07ed25519\x03k-1\x00\x40" + bytes(64)


def test_hand_made_dictionary_decodes() -> None:
    envelope = Envelope.from_bytes(_with_dictionary([b"ph", b"AT-202"], [(0, 1), (0, 1)]))
    assert [r.tag for r in envelope.readings] == ["ph", "ph"]


@pytest.mark.parametrize(
    ("strings", "records", "problem"),
    [
        ([b"ph", b"ph", b"AT-202"], [(0, 2), (1, 2)], "'ph' is listed twice"),
        ([b"ph", b"AT-202", b"unused"], [(0, 1)], "string 2 \\('unused'\\) is out of order or unused"),
        ([b"AT-202", b"ph"], [(1, 0)], "string 0 \\('AT-202'\\) is out of order or unused"),
        (
            [b"ph", b"AT-202"],
            [(0, 2)],
            "expected a source reference below the dictionary size 2; reading 0 has 2",
        ),
        (
            [b"ph", b"AT-202"],
            [(5, 1)],
            "expected a tag reference below the dictionary size 2; reading 0 has 5",
        ),
    ],
)
def test_non_canonical_dictionary_is_rejected(
    strings: list[bytes], records: list[tuple[int, int]], problem: str
) -> None:
    with pytest.raises(InputError, match=problem):
        Envelope.from_bytes(_with_dictionary(strings, records))


def _patch_record(envelope: Envelope, index: int, field: int, data: bytes) -> bytes:
    at = layout(envelope)["records"] + 21 * index + field
    return replace(envelope.to_bytes(), at, data)


def test_unknown_quality_is_rejected() -> None:
    envelope = seal(catalogue_readings(5))
    with pytest.raises(InputError, match=r"expected a quality of 0 \(good\).*reading 3 has 3"):
        Envelope.from_bytes(_patch_record(envelope, 3, 20, b"\x03"))


def test_time_beyond_year_9999_is_rejected() -> None:
    envelope = seal(catalogue_readings(5))
    with pytest.raises(InputError, match=r"expected a time within years 1 to 9999.*reading 1 has"):
        Envelope.from_bytes(_patch_record(envelope, 1, 4, struct.pack(">q", 2**62)))


@pytest.mark.parametrize("nan", ["fff8000000000000", "7ff8000000000001", "7ff0000000000001"])
def test_non_canonical_nan_is_rejected(nan: str) -> None:
    envelope = seal(catalogue_readings(5))
    with pytest.raises(
        InputError, match=r"expected NaN encoded as 7ff8000000000000; reading 2 has another NaN"
    ):
        Envelope.from_bytes(_patch_record(envelope, 2, 12, bytes.fromhex(nan)))


def test_any_nan_is_sealed_canonically() -> None:
    weird = struct.unpack(">d", bytes.fromhex("fff8000000000abc"))[0]
    reading = Reading("ph", START, weird, Quality.BAD, "AT-202")
    assert Envelope.from_bytes(seal([reading]).to_bytes()).reading_count == 1


def test_sequence_zero_and_empty_parts_are_rejected() -> None:
    envelope = seal(catalogue_readings(3))
    raw, spots = envelope.to_bytes(), layout(envelope)
    with pytest.raises(InputError, match="expected a sequence number of 1 or more; got 0"):
        Envelope.from_bytes(replace(raw, spots["sequence"], bytes(8)))
    with pytest.raises(InputError, match="expected a reading count of 1 to 100000; got 0"):
        Envelope.from_bytes(replace(raw, spots["count"], bytes(4)))
    with pytest.raises(InputError, match="expected a dictionary of 1 or more strings; got 0"):
        Envelope.from_bytes(replace(raw, spots["dictionary"], bytes(2)))
    with pytest.raises(InputError, match="expected a signature of 1 or more bytes; got length 0"):
        Envelope.from_bytes(raw[:-66] + b"\x00\x00")


def test_sealing_refuses_what_cannot_be_encoded() -> None:
    good = catalogue_readings(1)
    with pytest.raises(InputError, match="1 to 100000 readings, got 0"):
        seal([])
    with pytest.raises(InputError, match="sequence numbers start at 1"):
        seal(good, sequence=0)
    with pytest.raises(InputError, match="previous digest is 32 bytes"):
        seal(good, previous=b"\x00")
    with pytest.raises(InputError, match="allowed 1 to 255"):
        seal([Reading("x" * 256, START, 1.0, Quality.GOOD, "AT-202")])
    with pytest.raises(InputError, match="not valid Unicode"):
        seal([Reading("ph\ud800", START, 1.0, Quality.GOOD, "AT-202")])
    with pytest.raises(InputError, match="envelope source '' is 0 bytes"):
        seal(good, source="")


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_envelopes_fail_only_with_input_error(data: st.DataObject) -> None:
    """A fuzzer's view: any edit to a valid envelope decodes or is an InputError, never a crash."""
    raw = bytearray(seal(catalogue_readings(4)).to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip":
            raw[at] ^= data.draw(st.integers(1, 255))
        elif action == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif len(raw) > 1:
            del raw[at]
    try:
        decoded = Envelope.from_bytes(bytes(raw))
    except InputError:
        return
    assert decoded.to_bytes() == bytes(raw)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_random_bytes_fail_only_with_input_error(raw: bytes) -> None:
    with pytest.raises(InputError):
        Envelope.from_bytes(b"ASEV\x00\x01" + raw)


@settings(max_examples=100, deadline=None)
@given(readings=readings_strategy)
def test_reading_columns_are_the_decoded_readings_column_by_column(readings: list[Reading]) -> None:
    decoded = Envelope.from_bytes(seal(readings).to_bytes())
    columns = decoded.reading_columns()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert columns.tags == tuple(r.tag for r in decoded.readings)
    assert columns.sources == tuple(r.source for r in decoded.readings)
    assert columns.times_us == tuple((r.time - epoch) // timedelta(microseconds=1) for r in decoded.readings)
    assert columns.qualities == tuple(int(r.quality) for r in decoded.readings)
    packed = [struct.pack(">d", v) for v in columns.values]
    assert packed == [struct.pack(">d", r.value) for r in decoded.readings]

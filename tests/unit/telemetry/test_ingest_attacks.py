"""Attacks on ingest, one test each: every one is rejected, quarantined, counted, and traffic goes on."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from telemetry_support import SETTINGS, SOURCE, START, FakeSink, catalogue_readings, fixed_key

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import ConfigError, InputError, IntegrityError, RollbackError, SignatureError
from aseptic.telemetry import (
    EdgeSigner,
    Envelope,
    Ingestor,
    IngestVerifier,
    Quality,
    Quarantine,
    QuarantineEvent,
    Reading,
    RejectReason,
    SignatureBlock,
)

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "A11-5", "P11-11.10h", "P11-11.10a")


@dataclass
class Plant:
    """A collector and an ingest pipeline, wired as in the service but with a fake ledger."""

    key: SigningKey
    signer: EdgeSigner
    clock: SimClock
    verifier: IngestVerifier
    sink: FakeSink
    quarantine: Quarantine
    ingestor: Ingestor
    batch: int = 0

    def next_envelope(self, readings: list[Reading] | None = None, size: int = 20) -> Envelope:
        self.batch += 1
        if readings is None:
            readings = catalogue_readings(size, seed=self.batch, start=START + timedelta(hours=self.batch))
        return self.signer.seal(readings)

    def send(self, envelope: Envelope | bytes) -> Envelope | QuarantineEvent:
        return self.ingestor.ingest(envelope if isinstance(envelope, bytes) else envelope.to_bytes())

    def rejected(self, envelope: Envelope | bytes, reason: RejectReason) -> QuarantineEvent:
        result = self.send(envelope)
        assert isinstance(result, QuarantineEvent), f"expected a rejection for {reason}, it was accepted"
        assert result.reason == reason, result.message
        return result

    def accepted(self, envelope: Envelope) -> None:
        result = self.send(envelope)
        assert isinstance(result, Envelope), getattr(result, "message", result)
        assert result.digest == envelope.digest

    def files(self) -> list[Path]:
        return sorted(self.quarantine.directory.iterdir())


@pytest.fixture
def plant(tmp_path: Path) -> Plant:
    key = fixed_key(1)
    clock = SimClock(START + timedelta(days=30))
    verifier = IngestVerifier({SOURCE: key.public}, clock=clock, settings=SETTINGS)
    sink = FakeSink()
    quarantine = Quarantine.open(tmp_path, clock=clock, max_stored_bytes=SETTINGS.max_envelope_bytes)
    return Plant(
        key, EdgeSigner(SOURCE, key), clock, verifier, sink, quarantine, Ingestor(verifier, sink, quarantine)
    )


def test_valid_stream_is_accepted_in_order(plant: Plant) -> None:
    for _ in range(5):
        plant.accepted(plant.next_envelope())
    assert plant.sink.sequences == [1, 2, 3, 4, 5]
    assert plant.ingestor.counters.envelopes == 5 and plant.ingestor.counters.readings == 100
    assert plant.files() == []


def test_tampered_envelope_byte_is_rejected(plant: Plant) -> None:
    """Every byte of a small envelope, header, dictionary, readings and signature block, flipped."""
    envelope = plant.next_envelope(size=6)
    raw = envelope.to_bytes()
    reasons: dict[str, int] = {}
    for at in range(len(raw)):
        for mask in (0x01, 0x80):
            tampered = raw[:at] + bytes([raw[at] ^ mask]) + raw[at + 1 :]
            result = plant.verifier.screen(tampered)
            assert not isinstance(result, Envelope), f"flip {mask:#x} at byte {at} was accepted"
            reasons[result.reason] = reasons.get(result.reason, 0) + 1
    # Each region fails its own way: decoding, the key lookup, or the signature over the digest.
    assert set(reasons) >= {RejectReason.MALFORMED, RejectReason.BAD_SIGNATURE, RejectReason.UNKNOWN_KEY}
    assert set(reasons) <= {
        RejectReason.MALFORMED,
        RejectReason.BAD_SIGNATURE,
        RejectReason.UNKNOWN_KEY,
        RejectReason.UNKNOWN_SOURCE,
    }
    plant.accepted(envelope)  # the untouched original still goes through afterwards


def test_tampered_reading_value_is_rejected_and_quarantined(plant: Plant) -> None:
    envelope = plant.next_envelope(size=20)
    raw = bytearray(envelope.to_bytes())
    value_at = raw.index(envelope.signature.signature) - 2 - 1 - len(envelope.signature.key_id) - 8
    value_at -= 21 * 19 + 9  # the value of reading 0 (records are 21 bytes, value at +12)
    raw[value_at + 7] ^= 0x01
    event = plant.rejected(bytes(raw), RejectReason.BAD_SIGNATURE)
    assert "signature does not verify" in event.message and event.authenticated is False
    assert event.source == SOURCE and event.sequence == 1
    plant.accepted(envelope)


def test_unknown_key_is_rejected(plant: Plant) -> None:
    intruder = SigningKey.generate()
    forged = EdgeSigner(SOURCE, intruder).seal(catalogue_readings(5))
    event = plant.rejected(forged, RejectReason.UNKNOWN_KEY)
    assert f"key '{intruder.key_id}' is not trusted for this source" in event.message
    assert event.error_class == "SignatureError"
    plant.accepted(plant.next_envelope())


def test_unknown_source_is_rejected(plant: Plant) -> None:
    stranger = EdgeSigner("collector-99", fixed_key(1)).seal(catalogue_readings(5))
    event = plant.rejected(stranger, RejectReason.UNKNOWN_SOURCE)
    assert "from 'collector-99': source is not known" in event.message
    plant.accepted(plant.next_envelope())


def test_forged_signature_under_a_trusted_key_id_is_rejected(plant: Plant) -> None:
    intruder = SigningKey.generate()
    honest = plant.next_envelope()
    forged = EdgeSigner(SOURCE, intruder).seal(catalogue_readings(5))
    claimed = SignatureBlock(honest.signature.algorithm, honest.signature.key_id, forged.signature.signature)
    event = plant.rejected(forged.with_signature(claimed), RejectReason.BAD_SIGNATURE)
    assert f"ed25519 signature does not verify with key {plant.key.key_id}" in event.message
    assert forged.digest_hex in event.message


def test_signature_transplanted_from_another_envelope_is_rejected(plant: Plant) -> None:
    first, second = plant.next_envelope(), plant.next_envelope()
    plant.rejected(first.with_signature(second.signature), RejectReason.BAD_SIGNATURE)
    plant.accepted(first)
    plant.accepted(second)


def test_algorithm_substitution_is_rejected(plant: Plant) -> None:
    honest = plant.next_envelope()
    block = SignatureBlock("ml-dsa-65", honest.signature.key_id, honest.signature.signature)
    event = plant.rejected(honest.with_signature(block), RejectReason.BAD_SIGNATURE)
    assert "claims algorithm 'ml-dsa-65'" in event.message
    plant.accepted(honest)


def test_short_signature_is_rejected(plant: Plant) -> None:
    honest = plant.next_envelope()
    block = SignatureBlock("ed25519", honest.signature.key_id, honest.signature.signature[:63])
    plant.rejected(honest.with_signature(block), RejectReason.BAD_SIGNATURE)
    plant.accepted(honest)


def test_replayed_envelope_is_rejected_and_stream_continues(plant: Plant) -> None:
    envelopes = [plant.next_envelope() for _ in range(4)]
    for envelope in envelopes[:3]:
        plant.accepted(envelope)
    event = plant.rejected(envelopes[1], RejectReason.REPLAY)
    assert event.message == "envelope 4 from 'collector-01': sequence 2 is behind 3 (replay?)"
    assert event.error_class == "RollbackError" and event.authenticated
    event = plant.rejected(envelopes[2], RejectReason.REPLAY)
    assert "sequence 3 repeats 3 (replay?)" in event.message
    plant.accepted(envelopes[3])
    assert plant.sink.sequences == [1, 2, 3, 4]
    assert plant.ingestor.counters.by_reason == {"replay": 2}


def test_reordered_envelopes_are_rejected_until_order_is_restored(plant: Plant) -> None:
    one, two, three = (plant.next_envelope() for _ in range(3))
    plant.accepted(one)
    event = plant.rejected(three, RejectReason.GAP)
    assert "sequence 3 follows 1: 1 envelope(s) missing (2)" in event.message
    plant.accepted(two)
    plant.accepted(three)  # the collector resends in order
    assert plant.sink.sequences == [1, 2, 3]


def test_gap_is_detected(plant: Plant) -> None:
    envelopes = [plant.next_envelope() for _ in range(7)]
    plant.accepted(envelopes[0])
    event = plant.rejected(envelopes[6], RejectReason.GAP)
    assert event.message == (
        "envelope 2 from 'collector-01': sequence 7 follows 1: 5 envelope(s) missing (2..6)"
    )
    assert event.error_class == "IntegrityError"
    for envelope in envelopes[1:]:
        plant.accepted(envelope)


def test_first_envelope_must_start_the_chain(plant: Plant) -> None:
    late = EdgeSigner(SOURCE, plant.key, sequence=41, previous_digest=b"\x05" * 32).seal(
        catalogue_readings(3)
    )
    event = plant.rejected(late, RejectReason.GAP)
    assert "sequence 42 follows 0: 41 envelope(s) missing (1..41)" in event.message


def test_forked_chain_is_rejected(plant: Plant) -> None:
    """The same key signs two histories (a cloned collector): the second does not chain."""
    plant.accepted(plant.next_envelope())
    plant.accepted(plant.next_envelope())
    clone = EdgeSigner(SOURCE, plant.key, sequence=2, previous_digest=b"\xaa" * 32)
    event = plant.rejected(clone.seal(catalogue_readings(4)), RejectReason.CHAIN_MISMATCH)
    head = plant.verifier.head(SOURCE)
    assert head is not None
    assert f"previous digest expected {head.digest.hex()}, got {'aa' * 32}" in event.message
    plant.accepted(plant.next_envelope())


def test_truncated_envelope_is_rejected(plant: Plant) -> None:
    envelope = plant.next_envelope(size=3)
    raw = envelope.to_bytes()
    for length in range(len(raw)):
        event = plant.rejected(raw[:length], RejectReason.MALFORMED)
        assert event.size == length and event.source is None
    assert plant.ingestor.counters.rejected == len(raw)
    assert len(plant.files()) == 2 * len(raw)
    plant.accepted(envelope)


def test_oversized_message_is_quarantined_truncated(plant: Plant) -> None:
    limit = SETTINGS.max_envelope_bytes
    huge = plant.next_envelope(size=4000)  # about 84 kB: over the 64 KiB limit
    raw = huge.to_bytes()
    assert len(raw) > limit
    event = plant.rejected(raw, RejectReason.OVERSIZE)
    assert f"{len(raw)} bytes exceed the limit of {limit} bytes" in event.message
    assert (event.size, event.stored_size) == (len(raw), limit)
    assert event.file is not None
    kept = (plant.quarantine.directory / event.file).read_bytes()
    assert kept == raw[:limit]
    assert event.stored_sha256 != event.sha256
    plant.signer = EdgeSigner(SOURCE, plant.key)  # that envelope never entered the chain
    plant.accepted(plant.next_envelope())


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("quality", [Quality.GOOD, Quality.UNCERTAIN])
def test_nan_and_inf_values_are_rejected(plant: Plant, bad: float, quality: Quality) -> None:
    readings = catalogue_readings(10)
    readings[4] = Reading("ph", readings[4].time, bad, quality, "AT-202")
    event = plant.rejected(plant.next_envelope(readings), RejectReason.NON_FINITE)
    assert f"reading 4 ('ph' at 2026-01-01T06:00:00.000000Z): value {bad!r} with quality {quality.name}" in (
        event.message
    )
    assert event.authenticated
    plant.accepted(plant.next_envelope())  # the rejected envelope still moved the chain on


def test_nan_with_quality_bad_is_accepted(plant: Plant) -> None:
    readings = catalogue_readings(10)
    readings[2] = Reading("ph", readings[2].time, math.nan, Quality.BAD, "AT-202")
    readings[3] = Reading("volume_l", readings[3].time, -math.inf, Quality.BAD, "PT-204")
    plant.accepted(plant.next_envelope(readings))


def test_out_of_range_value_rejects_the_whole_envelope(plant: Plant) -> None:
    readings = catalogue_readings(30)
    readings[7] = Reading("ph", readings[7].time, 14.5, Quality.GOOD, "AT-202")
    readings[9] = Reading("temperature_k", readings[9].time, 200.0, Quality.BAD, "TIC-101")
    event = plant.rejected(plant.next_envelope(readings), RejectReason.OUT_OF_RANGE)
    assert (
        "reading 7 ('ph' at 2026-01-01T06:00:00.000000Z): value 14.5 pH is outside the calibrated span "
        in (event.message)
    )
    assert "[0.0, 14.0] (and 1 more reading(s))" in event.message
    assert plant.sink.envelopes == []  # none of its 30 readings entered the ledger
    plant.accepted(plant.next_envelope())


def test_unknown_tag_is_rejected(plant: Plant) -> None:
    readings = catalogue_readings(5)
    readings[3] = Reading("valve_bypass", readings[3].time, 1.0, Quality.GOOD, "TIC-101")
    event = plant.rejected(plant.next_envelope(readings), RejectReason.UNKNOWN_TAG)
    assert "reading 3: tag 'valve_bypass' is not in the tag catalogue" in event.message


@pytest.mark.parametrize("field", ["tag", "source"])
def test_control_character_in_a_name_is_refused_and_the_chain_moves_past_it(
    plant: Plant, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hostile collector holding a trusted key signs a name with U+0000 (which PostgreSQL cannot
    # store: every retry of the append would fail and stop the source).
    readings = catalogue_readings(5)
    r = readings[2]
    readings[2] = Reading(
        r.tag + "\x00" if field == "tag" else r.tag,
        r.time,
        r.value,
        r.quality,
        r.source + ("\x00" if field == "source" else ""),
    )
    monkeypatch.setattr(
        "aseptic.telemetry._wire.has_control", lambda text: False
    )  # its sealing skips the check
    hostile = plant.next_envelope(readings)
    monkeypatch.undo()
    event = plant.rejected(hostile, RejectReason.CONTROL_TEXT)
    what = "tag" if field == "tag" else "reading source"
    assert f"reading 2: {what} " in event.message and "holds a control character" in event.message
    assert event.in_chain and plant.sink.envelopes == []
    plant.accepted(plant.next_envelope())  # authentic and in order: the chain moved past it


def test_a_control_character_is_refused_at_sealing(plant: Plant) -> None:
    r = catalogue_readings(1)[0]
    for bad in (
        Reading(r.tag, r.time, r.value, r.quality, "TIC\x00101"),
        Reading("ph\x7f", r.time, 7.0, r.quality, r.source),
    ):
        with pytest.raises(InputError, match="holds a control character"):
            plant.signer.seal([bad])
    plant.accepted(plant.next_envelope())  # nothing was sealed: the chain is intact


def test_two_values_for_one_instrument_at_one_instant_are_refused(plant: Plant) -> None:
    # A collector (faulty or hostile) claims two different pH values at the same instant: the
    # historian would return both and the engine cannot score them. Before, both were logged.
    readings = catalogue_readings(6)
    r = readings[1]
    readings[4] = Reading(r.tag, r.time, r.value + 0.5, r.quality, r.source)
    event = plant.rejected(plant.next_envelope(readings), RejectReason.CONFLICTING)
    assert f"reading 4 ({r.tag!r} from {r.source!r} at " in event.message
    assert "repeats reading 1 with another value or quality" in event.message
    assert event.in_chain and plant.sink.envelopes == []
    plant.accepted(plant.next_envelope())  # authentic and in order: the chain moved past it


def test_other_quality_at_one_instant_conflicts_but_an_exact_repeat_is_accepted(plant: Plant) -> None:
    readings = catalogue_readings(6)
    r = readings[2]
    other = Quality.UNCERTAIN if r.quality is not Quality.UNCERTAIN else Quality.GOOD
    readings[5] = Reading(r.tag, r.time, r.value, other, r.source)
    plant.rejected(plant.next_envelope(readings), RejectReason.CONFLICTING)
    readings[5] = r  # the same reading twice: harmless
    plant.accepted(plant.next_envelope(readings))
    readings[5] = Reading(r.tag, r.time, r.value + 1.0, r.quality, "another-device")  # another source
    plant.accepted(plant.next_envelope(readings))


def test_future_clock_skew_is_rejected(plant: Plant) -> None:
    now = plant.clock.now()
    readings = catalogue_readings(5, start=now)
    readings[1] = Reading("ph", now + timedelta(seconds=301), 7.0, Quality.GOOD, "AT-202")
    event = plant.rejected(plant.next_envelope(readings), RejectReason.CLOCK_SKEW)
    assert "reading 1 ('ph') is at 2026-01-31T06:05:01.000000Z, 301.000 s ahead of the ingest clock" in (
        event.message
    )
    within = catalogue_readings(5, start=now + timedelta(seconds=300))
    plant.accepted(plant.next_envelope(within))


def test_old_readings_are_accepted(plant: Plant) -> None:
    """Store-and-forward after an outage, or a replayed history: age alone is no reason to refuse."""
    plant.accepted(plant.next_envelope(catalogue_readings(5, start=START - timedelta(days=3650))))


def test_valid_traffic_continues_after_each_bad_message(plant: Plant) -> None:
    intruder = SigningKey.generate()
    bad_messages = [
        b"",
        b"GET / HTTP/1.1\r\n\r\n",
        b"ASEV" + bytes(200),
        EdgeSigner(SOURCE, intruder).seal(catalogue_readings(3)).to_bytes(),
        b"\xff" * (SETTINGS.max_envelope_bytes + 1),
    ]
    sent = []
    for bad in bad_messages:
        good = plant.next_envelope()
        sent.append(good.sequence)
        plant.send(bad)
        plant.accepted(good)
    counters = plant.ingestor.counters
    assert plant.sink.sequences == sent
    assert (counters.envelopes, counters.rejected, counters.quarantined) == (5, 5, 5)
    assert counters.by_reason == {"malformed": 3, "unknown_key": 1, "oversize": 1}
    assert plant.quarantine.counts == counters.by_reason
    assert len(plant.sink.events) == 5
    sidecars = [json.loads(p.read_bytes()) for p in plant.files() if p.suffix == ".json"]
    assert sorted(s["reason"] for s in sidecars) == sorted(e.reason for e in plant.sink.events)


def test_rejections_are_logged_with_canonical_event_bytes(plant: Plant) -> None:
    plant.send(b"junk")
    (event,) = plant.sink.events
    assert plant.sink.leaves == [event.to_bytes()]
    assert QuarantineEvent.from_bytes(event.to_bytes()) == event
    assert event.file is not None
    sidecar = plant.quarantine.directory / event.file.replace(".bin", ".json")
    assert sidecar.read_bytes() == event.to_bytes()


def test_failing_ledger_raises_and_the_envelope_can_be_retried(plant: Plant) -> None:
    from aseptic.errors import BackendError

    envelope = plant.next_envelope()
    plant.sink.fail_with = BackendError("ledger.db: disk I/O error")
    with pytest.raises(BackendError):
        plant.send(envelope)
    assert plant.verifier.head(SOURCE) is None
    plant.sink.fail_with = None
    plant.accepted(envelope)


def test_verifier_crash_is_quarantined_not_raised(plant: Plant, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(raw: bytes) -> Envelope:
        raise ZeroDivisionError("a decoder bug")

    monkeypatch.setattr(Envelope, "from_bytes", staticmethod(crash))
    event = plant.rejected(b"ASEV-crafted", RejectReason.INTERNAL_ERROR)
    assert (
        "the verifier failed on this input (ZeroDivisionError: a decoder bug); this is a bug" in event.message
    )
    monkeypatch.undo()
    plant.accepted(plant.next_envelope())


def test_verify_raises_the_precise_error_class() -> None:
    key = fixed_key(1)
    clock = SimClock(START + timedelta(days=1))
    verifier = IngestVerifier({SOURCE: [key.public]}, clock=clock, settings=SETTINGS)
    signer = EdgeSigner(SOURCE, key)
    one, two, three = (signer.seal(catalogue_readings(3, seed=i)) for i in range(3))
    assert verifier.verify(one.to_bytes()) == one
    with pytest.raises(RollbackError):
        verifier.verify(one.to_bytes())
    with pytest.raises(IntegrityError, match="missing"):
        verifier.verify(three.to_bytes())
    with pytest.raises(SignatureError):
        verifier.verify(EdgeSigner(SOURCE, SigningKey.generate()).seal(catalogue_readings(3)).to_bytes())
    with pytest.raises(InputError, match="truncated"):
        verifier.verify(two.to_bytes()[:-1])
    assert verifier.verify(two.to_bytes()) == two
    assert verifier.heads[SOURCE].sequence == 2


def test_empty_key_set_fails_closed() -> None:
    clock = SimClock(START)
    with pytest.raises(ConfigError, match="no trusted source keys"):
        IngestVerifier({}, clock=clock)
    with pytest.raises(ConfigError, match="'collector-01' has no trusted key"):
        IngestVerifier({SOURCE: []}, clock=clock)


def test_key_rotation_accepts_both_keys_of_a_source(plant: Plant) -> None:
    new_key = fixed_key(2)
    verifier = IngestVerifier(
        {SOURCE: [plant.key.public, new_key.public]}, clock=plant.clock, settings=SETTINGS
    )
    first = plant.next_envelope()
    verifier.verify(first.to_bytes())
    rotated = EdgeSigner(SOURCE, new_key, sequence=first.sequence, previous_digest=first.digest)
    verifier.verify(rotated.seal(catalogue_readings(3)).to_bytes())


def test_restarted_verifier_resumes_from_ledger_heads(plant: Plant) -> None:
    from aseptic.telemetry import ChainHead

    first, second = plant.next_envelope(), plant.next_envelope()
    resumed = IngestVerifier(
        {SOURCE: plant.key.public},
        clock=plant.clock,
        settings=SETTINGS,
        heads={SOURCE: ChainHead(first.sequence, first.digest)},
    )
    with pytest.raises(RollbackError):
        resumed.verify(first.to_bytes())
    resumed.verify(second.to_bytes())


def test_unscreened_envelope_cannot_move_a_chain(plant: Plant) -> None:
    """A caller mistake must not let an unauthenticated envelope become a chain head."""
    forged = EdgeSigner(SOURCE, SigningKey.generate()).seal(catalogue_readings(3))
    with pytest.raises(ValueError, match="was not screened"):
        plant.verifier.advance(forged)
    plant.verifier.screen(forged.to_bytes())  # refused: still not vetted
    with pytest.raises(ValueError, match="was not screened"):
        plant.verifier.advance(forged)
    assert plant.verifier.head(SOURCE) is None
    plant.accepted(plant.next_envelope())

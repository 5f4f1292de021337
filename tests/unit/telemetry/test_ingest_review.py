"""Adversarial review of the ingest hand-offs (verifier -> sink, quarantine, counters): cases the
attack suite does not cover. Each is rejected (or accepted) as documented, counted once, and the
stream goes on."""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from pathlib import Path

import pytest
from telemetry_support import SETTINGS, SOURCE, START, FakeSink, catalogue_readings, fixed_key

from aseptic.clock import SimClock
from aseptic.config import TelemetrySettings
from aseptic.crypto import SigningKey
from aseptic.errors import BackendError
from aseptic.ledger import Ledger, verify_ledger
from aseptic.telemetry import (
    ChainHead,
    EdgeSigner,
    Envelope,
    Ingestor,
    IngestVerifier,
    Quality,
    Quarantine,
    QuarantineEvent,
    Reading,
)

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "A11-5")

OTHER = "collector-02"
NOW = START + timedelta(days=30)


def pipeline(
    tmp_path: Path, settings: TelemetrySettings = SETTINGS, **quarantine_kwargs: int
) -> tuple[Ingestor, FakeSink]:
    clock = SimClock(NOW)
    keys = {SOURCE: fixed_key(1).public, OTHER: fixed_key(2).public}
    verifier = IngestVerifier(keys, clock=clock, settings=settings)
    quarantine = Quarantine.open(
        tmp_path, clock=clock, max_stored_bytes=settings.max_envelope_bytes, **quarantine_kwargs
    )
    sink = FakeSink()
    return Ingestor(verifier, sink, quarantine), sink


def refused(result: Envelope | QuarantineEvent, reason: str) -> QuarantineEvent:
    assert isinstance(result, QuarantineEvent), f"accepted, expected {reason}"
    assert result.reason == reason, result.message
    return result


def test_a_signature_valid_for_another_device_is_rejected(tmp_path: Path) -> None:
    """Collector 01's real key signs an envelope that claims to come from collector 02."""
    ingestor, sink = pipeline(tmp_path)
    impostor = EdgeSigner(OTHER, fixed_key(1)).seal(catalogue_readings(5))
    event = refused(ingestor.ingest(impostor.to_bytes()), "unknown_key")
    assert f"from {OTHER!r}: key '{fixed_key(1).key_id}' is not trusted for this source" in event.message
    assert f"(trusted: {fixed_key(2).key_id})" in event.message
    assert not event.authenticated and event.source == OTHER
    assert ingestor.verifier.head(OTHER) is None
    own = EdgeSigner(OTHER, fixed_key(2)).seal(catalogue_readings(5))
    assert isinstance(ingestor.ingest(own.to_bytes()), Envelope)  # 02's own chain still starts at 1
    assert [e.source for e, _ in sink.envelopes] == [OTHER]


def test_an_envelope_relabelled_to_another_source_is_rejected(tmp_path: Path) -> None:
    """The source is under the digest: rewriting it in the bytes breaks the signature."""
    ingestor, _ = pipeline(tmp_path)
    honest = EdgeSigner(SOURCE, fixed_key(1)).seal(catalogue_readings(5))
    relabelled = honest.to_bytes().replace(SOURCE.encode(), OTHER.encode(), 1)
    event = refused(ingestor.ingest(relabelled), "unknown_key")
    assert event.source == OTHER and event.digest != honest.digest_hex
    assert isinstance(ingestor.ingest(honest.to_bytes()), Envelope)


def test_the_size_limit_is_inclusive(tmp_path: Path) -> None:
    envelope = EdgeSigner(SOURCE, fixed_key(1)).seal(catalogue_readings(60))
    size = len(envelope.to_bytes())
    over, _ = pipeline(
        tmp_path / "over", TelemetrySettings(readings_per_envelope=60, max_envelope_bytes=size - 1)
    )
    event = refused(over.ingest(envelope.to_bytes()), "oversize")
    assert f"{size} bytes exceed the limit of {size - 1} bytes" in event.message
    at, _ = pipeline(tmp_path / "at", TelemetrySettings(readings_per_envelope=60, max_envelope_bytes=size))
    assert isinstance(at.ingest(envelope.to_bytes()), Envelope)


def test_rejections_past_the_quota_are_counted_but_not_as_stored(tmp_path: Path) -> None:
    ingestor, sink = pipeline(tmp_path, quota_bytes=4096 + 100)
    for junk in (b"A" * 50, b"B" * 50, b"C" * 50):
        ingestor.ingest(junk)
    counters = ingestor.counters
    assert (counters.rejected, counters.quarantined, counters.by_reason) == (3, 1, {"malformed": 3})
    assert [event.file is not None for event in sink.events] == [True, False, False]
    assert [event.sha256 for event in sink.events] == [
        hashlib.sha256(junk).hexdigest() for junk in (b"A" * 50, b"B" * 50, b"C" * 50)
    ]


def test_a_content_refusal_whose_event_cannot_be_logged_is_retried_whole(tmp_path: Path) -> None:
    """The ledger fails on the quarantine event: the chain must not have moved past the envelope."""
    ingestor, sink = pipeline(tmp_path)
    signer = EdgeSigner(SOURCE, fixed_key(1))
    bad = catalogue_readings(5)
    bad[2] = Reading("ph", bad[2].time, -1.0, Quality.GOOD, "AT-202")
    refused_envelope, next_envelope = signer.seal(bad), signer.seal(catalogue_readings(5, seed=9))
    sink.fail_with = BackendError("ledger.db: disk I/O error")
    with pytest.raises(BackendError):
        ingestor.ingest(refused_envelope.to_bytes())
    assert ingestor.verifier.head(SOURCE) is None
    assert (ingestor.counters.rejected, ingestor.counters.by_reason) == (0, {})
    sink.fail_with = None
    refused(ingestor.ingest(refused_envelope.to_bytes()), "out_of_range")
    assert ingestor.verifier.head(SOURCE) == ChainHead(1, refused_envelope.digest)
    assert isinstance(ingestor.ingest(next_envelope.to_bytes()), Envelope)
    assert (ingestor.counters.rejected, ingestor.counters.envelopes) == (1, 1)


def test_a_quarantine_path_that_is_not_a_directory_is_a_backend_error(tmp_path: Path) -> None:
    (tmp_path / "quarantine").write_bytes(b"not a directory")
    with pytest.raises(BackendError, match=r"cannot open quarantine directory .*quarantine: File exists"):
        Quarantine.open(tmp_path, clock=SimClock(NOW), max_stored_bytes=1024)


def test_a_quarantine_directory_removed_while_running_is_a_backend_error_and_retry_works(
    tmp_path: Path,
) -> None:
    ingestor, sink = pipeline(tmp_path)
    (tmp_path / "quarantine").rmdir()
    with pytest.raises(
        BackendError, match=r"cannot write quarantine file .*\.bin: No such file or directory"
    ):
        ingestor.ingest(b"junk")
    assert sink.events == [] and ingestor.counters.rejected == 0
    (tmp_path / "quarantine").mkdir()
    refused(ingestor.ingest(b"junk"), "malformed")
    assert ingestor.counters.rejected == 1


def test_an_envelope_accepted_before_a_restart_is_a_replay_after_it(tmp_path: Path) -> None:
    key, site_key, clock = fixed_key(1), SigningKey.generate(), SimClock(NOW)
    envelope = EdgeSigner(SOURCE, key).seal(catalogue_readings(5))
    for attempt in range(2):
        with Ledger.open(tmp_path, site_key=site_key, clock=clock) as ledger:
            heads = {source: ChainHead(*head) for source, head in ledger.chain_heads().items()}
            verifier = IngestVerifier({SOURCE: key.public}, clock=clock, settings=SETTINGS, heads=heads)
            quarantine = Quarantine.open(tmp_path, clock=clock, max_stored_bytes=1 << 16)
            result = Ingestor(verifier, ledger, quarantine).ingest(envelope.to_bytes())
        if attempt == 0:
            assert isinstance(result, Envelope)
        else:
            assert "sequence 1 repeats 1 (replay?)" in refused(result, "replay").message


def test_bad_readings_without_a_number_are_logged_and_verify(tmp_path: Path) -> None:
    """NaN and both infinities with quality BAD are accepted; the stored rows must verify."""
    key, site_key, clock = fixed_key(1), SigningKey.generate(), SimClock(NOW)
    readings = catalogue_readings(6)
    for i, value in ((1, math.nan), (2, math.inf), (3, -math.inf)):
        readings[i] = Reading(readings[i].tag, readings[i].time, value, Quality.BAD, readings[i].source)
    envelope = EdgeSigner(SOURCE, key).seal(readings)
    with Ledger.open(tmp_path, site_key=site_key, clock=clock) as ledger:
        verifier = IngestVerifier({SOURCE: key.public}, clock=clock, settings=SETTINGS)
        quarantine = Quarantine.open(tmp_path, clock=clock, max_stored_bytes=1 << 16)
        ledger.append_key(SOURCE, key.public)
        assert isinstance(Ingestor(verifier, ledger, quarantine).ingest(envelope.to_bytes()), Envelope)
        ledger.checkpoint()
    report = verify_ledger(tmp_path, site_key.public)
    assert report.discrepancies == [] and report.readings == 6

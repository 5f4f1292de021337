"""Sealing at the edge: consecutive chained envelopes, batching per source, resuming after a restart."""

from __future__ import annotations

import pytest
from telemetry_support import START, catalogue_readings, fixed_key

from aseptic.errors import InputError
from aseptic.telemetry import Collector, EdgeSigner, Envelope, Quality, Reading

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "ALCOA-ATTRIBUTABLE", "P11-11.10h")


def test_signer_chains_consecutive_envelopes() -> None:
    signer = EdgeSigner("collector-01", fixed_key(1))
    first, second = signer.seal(catalogue_readings(3)), signer.seal(catalogue_readings(3, seed=1))
    assert (first.sequence, second.sequence) == (1, 2)
    assert first.previous_digest == bytes(32)
    assert second.previous_digest == first.digest
    assert (signer.sequence, signer.previous_digest) == (2, second.digest)


def test_signer_resumes_where_it_stopped() -> None:
    signer = EdgeSigner("collector-01", fixed_key(1))
    signer.seal(catalogue_readings(3))
    resumed = EdgeSigner(
        "collector-01", fixed_key(1), sequence=signer.sequence, previous_digest=signer.previous_digest
    )
    assert resumed.seal(catalogue_readings(3)).sequence == 2


def test_failed_seal_leaves_the_signer_unchanged() -> None:
    signer = EdgeSigner("collector-01", fixed_key(1))
    with pytest.raises(InputError):
        signer.seal([])
    assert signer.sequence == 0
    assert signer.seal(catalogue_readings(1)).sequence == 1


def test_collector_batches_readings_per_envelope() -> None:
    collector = Collector(EdgeSigner("collector-01", fixed_key(1)), readings_per_envelope=250)
    readings = catalogue_readings(600)
    envelopes = list(collector.collect(readings))
    assert [e.reading_count for e in envelopes] == [250, 250, 100]
    assert [e.sequence for e in envelopes] == [1, 2, 3]
    assert [r for e in envelopes for r in e.readings] == readings


def test_collector_routes_readings_to_their_source() -> None:
    signers = [
        EdgeSigner("fermenter-01/AT-202", fixed_key(1)),
        EdgeSigner("fermenter-01/TIC-101", fixed_key(2)),
    ]
    collector = Collector(signers, readings_per_envelope=2)
    ph = [Reading("ph", START, 6.5 + i / 10, Quality.GOOD, "fermenter-01/AT-202") for i in range(3)]
    temp = [Reading("temperature_k", START, 298.0, Quality.GOOD, "fermenter-01/TIC-101")]
    envelopes = list(collector.collect([ph[0], temp[0], ph[1], ph[2]]))
    by_source: dict[str, list[Envelope]] = {}
    for envelope in envelopes:
        by_source.setdefault(envelope.source, []).append(envelope)
    assert [e.reading_count for e in by_source["fermenter-01/AT-202"]] == [2, 1]
    assert [e.reading_count for e in by_source["fermenter-01/TIC-101"]] == [1]
    with pytest.raises(InputError, match="routes to source 'elsewhere', which has no signer here"):
        collector.add(Reading("ph", START, 7.0, Quality.GOOD, "elsewhere"))


def test_unencodable_reading_is_refused_alone() -> None:
    collector = Collector(EdgeSigner("collector-01", fixed_key(1)), readings_per_envelope=3)
    good = catalogue_readings(3)
    collector.add(good[0])
    with pytest.raises(InputError, match="tag '' is 0 bytes"):
        collector.add(Reading("", START, 1.0, Quality.GOOD, "x"))
    collector.add(good[1])
    envelope = collector.add(good[2])
    assert envelope is not None and list(envelope.readings) == good


def test_collector_refuses_two_signers_for_one_source() -> None:
    with pytest.raises(ValueError, match="fork"):
        Collector([EdgeSigner("a", fixed_key(1)), EdgeSigner("a", fixed_key(2))])

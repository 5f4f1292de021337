"""File replay of a tag-history CSV, and the whole path: replay -> collector -> ingest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from telemetry_support import START, FakeSink, fixed_key

from aseptic.clock import SimClock
from aseptic.errors import InputError
from aseptic.telemetry import (
    Collector,
    EdgeSigner,
    Ingestor,
    IngestVerifier,
    Quality,
    Quarantine,
    Reading,
    TagHistoryReplay,
)

pytestmark = pytest.mark.requirement("ASE-CUSTODY")

HISTORY = """time_h,phase,ph,temperature_k,assay_penicillin_g_per_l
0.0,CHARGE,6.5,298.0,
0.2,CHARGE,6.51,,nan
0.4,BATCH,NaN,298.1,1.25
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "history.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_replay_yields_readings_at_start_plus_time(tmp_path: Path) -> None:
    readings = list(TagHistoryReplay(write(tmp_path, HISTORY), start=START))
    assert readings == [
        Reading("ph", START, 6.5, Quality.GOOD, "AT-202"),
        Reading("temperature_k", START, 298.0, Quality.GOOD, "TIC-101"),
        Reading("ph", START + timedelta(hours=0.2), 6.51, Quality.GOOD, "AT-202"),
        Reading("temperature_k", START + timedelta(hours=0.4), 298.1, Quality.GOOD, "TIC-101"),
        Reading("assay_penicillin_g_per_l", START + timedelta(hours=0.4), 1.25, Quality.GOOD, "LIMS-01"),
    ]


def test_replay_source_can_be_named(tmp_path: Path) -> None:
    readings = list(TagHistoryReplay(write(tmp_path, HISTORY), start=START, source="replay-01"))
    assert {r.source for r in readings} == {"replay-01"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("time,phase,ph\n0,A,7\n", "line 1: expected the columns time_h, phase"),
        ("time_h,phase,ph,bogus\n0,A,7,1\n", "line 1, column 4: 'bogus' is not a known tag"),
        ("time_h,phase,ph,ph\n0,A,7,7\n", "line 1: a tag column is repeated"),
        ("time_h,phase,ph\n0,A,seven\n", "line 2, column 3: 'seven' is not a number"),
        ("time_h,phase,ph\n0,A,7\n0.2,A\n", "line 3: 2 cells, the header has 3"),
        ("time_h,phase,ph\n,A,7\n", "line 2, column 1: time_h is missing"),
        ("time_h,phase,ph\ninf,A,7\n", "line 2, column 1: time_h 'inf' is not finite"),
    ],
)
def test_malformed_history_names_line_and_column(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        list(TagHistoryReplay(write(tmp_path, text), start=START))


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        list(TagHistoryReplay(tmp_path / "nope.csv", start=START))


def test_replayed_history_is_sealed_verified_and_stored(tmp_path: Path) -> None:
    lines = ["time_h,phase,ph,temperature_k,volume_l"]
    lines += [
        f"{i * 0.2:.1f},FED_BATCH,{6.4 + i % 3 / 10},{297.5 + i % 5 / 10},{58000 + i}" for i in range(400)
    ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    key = fixed_key(4)
    clock = SimClock(START + timedelta(days=10))
    collector = Collector(EdgeSigner("replay-01", key), readings_per_envelope=250)
    verifier = IngestVerifier({"replay-01": key.public}, clock=clock)
    sink = FakeSink()
    ingestor = Ingestor(verifier, sink, Quarantine.open(tmp_path, clock=clock, max_stored_bytes=1 << 20))
    envelopes = collector.collect(TagHistoryReplay(path, start=START))
    counters = ingestor.ingest_all(e.to_bytes() for e in envelopes)
    assert (counters.envelopes, counters.readings, counters.rejected) == (5, 1200, 0)
    assert sink.sequences == [1, 2, 3, 4, 5]

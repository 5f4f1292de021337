"""Lineage: a batch is an OpenLineage-style run in the log, traceable to what fed it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from evidence_support import BATCH_1, BATCH_2, T0, EvidenceSite, build_site, settings

from aseptic.clock import SimClock
from aseptic.errors import InputError
from aseptic.ledger import LeafKind, LogReader, batch_run_id, find_batch_windows, lineage_event, trace_record
from aseptic.ledger._lineage import mentions_batch
from aseptic.service import CustodyPipeline

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "ALCOA-ATTRIBUTABLE")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> EvidenceSite:
    return build_site(tmp_path_factory.mktemp("lineage") / "data")


def test_each_batch_is_bounded_by_its_start_and_complete_events(site: EvidenceSite) -> None:
    with LogReader.open(site.data_dir) as reader:
        windows = find_batch_windows(reader.iter_payloads(LeafKind.AUDIT))
    assert set(windows) == {BATCH_1, BATCH_2}
    first, second = windows[BATCH_1], windows[BATCH_2]
    assert first.last_leaf is not None and first.first_leaf < first.last_leaf < second.first_leaf
    start = first.start.payload
    assert start["eventType"] == "START" and start["run"]["runId"] == batch_run_id("site-01", BATCH_1)
    assert start["job"] == {"name": "batch", "namespace": "site-01"}
    assert start["schemaURL"].startswith("https://openlineage.io/spec/")


def test_the_complete_event_names_envelopes_model_decisions_and_quarantine(site: EvidenceSite) -> None:
    with LogReader.open(site.data_dir) as reader:
        window = find_batch_windows(reader.iter_payloads(LeafKind.AUDIT))[BATCH_1]
        assert window.end is not None
        inputs = {item["name"]: item["facets"] for item in window.end.inputs}
        envelopes = inputs["envelopes/collector-01"]
        assert envelopes["ledger"]["count"] == 3 and envelopes["readings"]["count"] == 12
        assert envelopes["sequence"] == {"first": 1, "last": 3}
        manifest = reader.record(inputs["model/batch-mspc"]["ledger"]["leaf"])
        assert json.loads(manifest.payload)["type"] == "provenance.manifest"
        assert inputs["model/batch-mspc"]["version"] == {"version": "1.0"}
        (decision,) = inputs["decisions"]["ledger"]["leaves"]
        assert reader.record(decision).kind is LeafKind.DECISION
        (quarantined,) = inputs["quarantine"]["ledger"]["leaves"]
        assert reader.record(quarantined).kind is LeafKind.QUARANTINE


def test_trace_walks_from_a_batch_to_everything_that_fed_it(site: EvidenceSite) -> None:
    trace = trace_record(site.data_dir, BATCH_1)
    roles = {(step.role, step.kind) for step in trace.steps}
    assert {("START", "audit"), ("COMPLETE", "audit"), ("input", "envelope"), ("input", "finding")} <= roles
    assert ("input", "decision") in roles and ("input", "quarantine") in roles
    assert ("after", "signature") in roles  # the QA approval naming the batch
    assert trace.counts["envelope"] == 3 and not trace.problems
    text = "\n".join(trace.lines())
    assert f"batch {BATCH_1}" in text and "model/batch-mspc" in text
    assert json.loads(json.dumps(trace.to_json()))["run_id"] == batch_run_id("site-01", BATCH_1)


def test_trace_from_a_leaf_finds_its_batch(site: EvidenceSite) -> None:
    first = trace_record(site.data_dir, BATCH_2).first_leaf
    assert trace_record(site.data_dir, str(first + 1)).batch_id == BATCH_2


def test_trace_of_an_unknown_batch_or_leaf_is_bad_input(site: EvidenceSite) -> None:
    with pytest.raises(InputError, match="no batch 'nope'"):
        trace_record(site.data_dir, "nope")
    with pytest.raises(InputError, match="no record at leaf 99999"):
        trace_record(site.data_dir, "99999")
    with pytest.raises(InputError, match="in no batch window"):
        trace_record(site.data_dir, "0")


def test_trace_reports_an_event_that_claims_more_envelopes_than_the_window_holds(
    site: EvidenceSite, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(site.data_dir, copy)
    replica = EvidenceSite(copy, SimClock(site.clock.now()))
    inputs = [
        {
            "name": "envelopes/x",
            "namespace": "n",
            "facets": {"ledger": {"count": 5, "first_leaf": 0, "last_leaf": 1}},
        }
    ]
    with replica.open() as ledger:
        for kind in ("START", "COMPLETE"):
            event = lineage_event(
                kind, origin="site-01", batch_id="b9", time=site.clock.now(), actor="t", inputs=inputs
            )
            ledger.append_entry(LeafKind.AUDIT, event)
    assert trace_record(copy, "b9").problems == [
        "envelopes/x: the event names 5 envelopes, the window holds 0"
    ]


def test_batch_ids_match_as_whole_words() -> None:
    assert mentions_batch(b'{"record":"batch/b-1"}', "b-1")
    assert not mentions_batch(b'{"record":"batch/b-10"}', "b-1")
    assert not mentions_batch(b'{"record":"xb-1"}', "b-1")


def test_the_pipeline_refuses_overlapping_or_unopened_batches(tmp_path: Path) -> None:
    pipeline = CustodyPipeline(tmp_path, settings(), SimClock(T0), collector_id="collector-01")
    try:
        with pytest.raises(InputError, match="no batch is open"):
            pipeline.end_batch()
        pipeline.start_batch("a")
        with pytest.raises(InputError, match="batch 'a' is still open"):
            pipeline.start_batch("b")
        with pytest.raises(InputError, match="needs a batch id"):
            lineage_event("START", origin="site-01", batch_id=" ", time=SimClock(T0).now(), actor="t")
        assert pipeline.end_batch() > 0
    finally:
        pipeline.close()

"""``aseptic demo``: the whole chain of custody on one machine.

A plant streams over secured OPC UA; every reading is sealed at the edge, verified at ingest and
logged; a detector trained on clean simulated batches watches the stream; one clean and one
attacked batch run; the ledger is verified; a report is written.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aseptic.campaign import Ramp, TamperedView
from aseptic.clock import WallClock
from aseptic.config import Settings
from aseptic.detect import BatchModel, Engine, Finding, MspcDetector, RecipeDetector, ResidualCusum, Verdict
from aseptic.ledger import LedgerTampered, verify_ledger
from aseptic.service._assemble import SampleAssembler
from aseptic.service._custody import CustodyPipeline
from aseptic.service._report import BatchSeries, render_report_html
from aseptic.service._training import MODEL_FILE, train_detector
from aseptic.telemetry import OpcUaSource
from aseptic.twin import SIM_EPOCH, Plant, PlantLike, ServerOptions, TwinServer

__all__ = ["DemoPlan", "run_demo"]

Progress = Callable[[str, float], None]
DRAIN_TIMEOUT_S = 10.0
PLOTTED_TAGS = ("ph", "base_flow_l_per_h", "temperature_k", "dissolved_o2_mg_per_l", "offgas_co2_pct")


@dataclass(frozen=True)
class DemoPlan:
    """The fixed seeds and the attack of the demo (documented in docs/demo.md)."""

    clean_seed: int = 7
    attacked_seed: int = 8
    training_seed: int = 1000
    attack: Ramp = field(
        default_factory=lambda: Ramp("ph", start_h=100.0, duration_h=40.0, slope_per_h=0.005)
    )
    speed: float = 1_000_000.0  # simulated seconds per wall second: as fast as the host publishes
    publishing_interval_ms: float = 100.0


@dataclass
class _BatchRun:
    batch_id: str
    attacked: bool
    time_h: list[float] = field(default_factory=list)
    tags: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in PLOTTED_TAGS})
    alarm_index: list[float] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def run_demo(
    out_dir: Path, settings: Settings, *, plan: DemoPlan | None = None, progress: Progress
) -> dict[str, Any]:
    """Run the demo into ``out_dir`` (data in ``out_dir/data``); return the content of report.json.

    Raises:
        ConfigError / IntegrityError / BackendError: from the components (keys, ledger, server).
    """
    plan = plan or DemoPlan()
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    clock = WallClock()
    progress("training the detector on clean simulated batches", 0.0)
    model = train_detector(data_dir, settings, seed=plan.training_seed)
    pipeline = CustodyPipeline(data_dir, settings, clock, collector_id="collector-01")
    try:
        # The model that scores both batches is a logged, signed artifact: lineage cites its manifest.
        model_ref = pipeline.record_model(
            data_dir / MODEL_FILE, name="batch-mspc", version=f"training-seed-{plan.training_seed}"
        )
        pipeline.models = (model_ref,)
        delivery: dict[str, int] = {}
        runs = asyncio.run(_stream(data_dir, settings, plan, pipeline, model, progress, delivery))
        _inject_bad_input(pipeline)
    finally:
        pipeline.close()
    progress("verifying the ledger", 0.95)
    try:
        verdict = verify_ledger(data_dir, pipeline.site_key.public, require_signatures=True)
        verified = True
    except LedgerTampered as exc:
        verdict, verified = exc.report, False
    counters = pipeline.counters
    report: dict[str, Any] = {
        "batches": [_batch_report(run, plan) for run in runs],
        "ledger": {"size": verdict.size, "root": verdict.root, "verified": verified},
        "telemetry": {
            "envelopes": counters.envelopes,
            "readings": counters.readings,
            "rejected": counters.rejected,
            "quarantined": counters.quarantined,
            "published": delivery.get("published", 0),
            "received": delivery.get("received", 0),
        },
    }
    series = [
        BatchSeries(
            batch_id=run.batch_id,
            time_h=run.time_h,
            tags=run.tags,
            statistic=run.alarm_index,
            limit=1.0,
            statistic_name="max score / limit",
            attack_window_h=(plan.attack.start_h, plan.attack.end_h) if run.attacked else None,
            alert_times_h=[f.batch_time_h for f in run.findings],
        )
        for run in runs
    ]
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out_dir / "report.html").write_text(render_report_html(report, series), encoding="utf-8")
    progress("done", 1.0)
    return report


async def _stream(
    data_dir: Path,
    settings: Settings,
    plan: DemoPlan,
    pipeline: CustodyPipeline,
    model: BatchModel,
    progress: Progress,
    delivery: dict[str, int],
) -> list[_BatchRun]:
    clean = Plant(plan.clean_seed, settings=settings.twin)
    attacked = Plant(plan.attacked_seed, settings=settings.twin)
    plants: list[PlantLike] = [clean, TamperedView(attacked, [plan.attack])]
    boundary = SIM_EPOCH.timestamp() + clean.duration_h * 3600.0
    total_samples = sum(round(p.duration_h / p.sample_time_h) for p in (clean, attacked))
    options = ServerOptions(
        host="127.0.0.1", port=0, site=settings.site.id, writer_identity=settings.opcua.writer_identity
    )
    server = TwinServer(lambda i: plants[i], data_dir, options, WallClock())
    runs = [_BatchRun(f"{settings.site.id}-fermenter-01-{i + 1:04d}", attacked=i == 1) for i in range(2)]
    # The batch record in the log: a lineage START before the first reading, the switch at the
    # first reading past the boundary, a COMPLETE after the last (docs/ledger.md).
    logged_batch = 0
    pipeline.start_batch(runs[0].batch_id, models=pipeline.models)
    engine = Engine(
        [MspcDetector(model), ResidualCusum(model), RecipeDetector(model)],
        sink=lambda finding: _on_finding(finding, runs, pipeline),
        clock=WallClock(),
        persistence=settings.detect.persistence_samples,
    )
    assembler = SampleAssembler()
    current = -1
    scored = 0

    def score(when: datetime, sample: dict[str, float]) -> None:
        nonlocal current, scored
        index = 0 if when.timestamp() <= boundary + 1e-6 else 1
        if index != current:
            current = index
            engine.start_batch(runs[index].batch_id)
        verdict = engine.push_sample(sample, time=when)
        _record(runs[index], sample, verdict)
        scored += 1
        if scored % 50 == 0:
            progress(f"streaming batch {index + 1} of 2", 0.1 + 0.8 * scored / total_samples)

    async with server:
        async with OpcUaSource(
            server.endpoint_url,
            data_dir=data_dir,
            settings=settings.opcua,
            publishing_interval_ms=plan.publishing_interval_ms,
        ) as source:
            stop = asyncio.Event()
            publisher = asyncio.create_task(server.run(plan.speed, stop, max_samples=total_samples))
            batches = source.batches().__aiter__()
            while not (publisher.done() and source.stats.readings >= server.stats.values):
                try:
                    # Once publishing is over, a silent subscription means values were lost: stop
                    # waiting and let the report show published vs received.
                    timeout = DRAIN_TIMEOUT_S if publisher.done() else None
                    batch = await asyncio.wait_for(batches.__anext__(), timeout)
                except (StopAsyncIteration, TimeoutError):
                    break
                for reading in batch:
                    if logged_batch == 0 and reading.time.timestamp() > boundary + 1e-6:
                        pipeline.end_batch()
                        pipeline.start_batch(runs[1].batch_id, models=pipeline.models)
                        logged_batch = 1
                    pipeline.add_reading(reading)
                for when, sample in assembler.add(batch):
                    score(when, sample)
            await publisher
            delivery.update(published=server.stats.values, received=source.stats.readings)
    for when, sample in assembler.flush():
        score(when, sample)
    pipeline.flush()
    if logged_batch == 0:
        pipeline.end_batch()
        pipeline.start_batch(runs[1].batch_id, models=pipeline.models)
    pipeline.end_batch()
    return runs


def _on_finding(finding: Finding, runs: list[_BatchRun], pipeline: CustodyPipeline) -> None:
    pipeline.record_finding(finding)
    for run in runs:
        if run.batch_id == finding.batch_id:
            run.findings.append(finding)


def _record(run: _BatchRun, sample: dict[str, float], verdict: Verdict) -> None:
    run.time_h.append(verdict.batch_time_h)
    for tag in PLOTTED_TAGS:
        run.tags[tag].append(sample.get(tag, math.nan))
    ratios = [s.value / s.limit for s in verdict.scores if s.limit > 0 and math.isfinite(s.value)]
    run.alarm_index.append(max(ratios, default=math.nan))


def _inject_bad_input(pipeline: CustodyPipeline) -> None:
    """Show the quarantine at work: a replay of the last envelope and a forged (bit-flipped) copy."""
    raw = pipeline.last_accepted_raw
    if raw is None:
        return
    pipeline.ingest_raw(raw)
    forged = bytearray(raw)
    forged[len(forged) // 2] ^= 0x01
    pipeline.ingest_raw(bytes(forged))


def _batch_report(run: _BatchRun, plan: DemoPlan) -> dict[str, Any]:
    attack = plan.attack
    after = [f for f in run.findings if run.attacked and f.batch_time_h >= attack.start_h]
    return {
        "id": run.batch_id,
        "attacked": run.attacked,
        "attack": {
            "technique": attack.techniques[0],
            "tag": attack.tag,
            "kind": "ramp",
            "start_h": attack.start_h,
            "end_h": attack.end_h,
        }
        if run.attacked
        else None,
        "findings": [
            {
                "time_h": round(f.batch_time_h, 3),
                "detector": f.detector,
                "score": f.score,
                "limit": f.limit,
                "tags": list(f.tags),
                "technique": f.technique,
            }
            for f in run.findings
        ],
        "detected": bool(after),
        "time_to_detect_h": round(after[0].batch_time_h - attack.start_h, 3) if after else None,
    }

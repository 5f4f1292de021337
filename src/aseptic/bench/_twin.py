"""``aseptic bench twin``: detection of attacks and process faults on twin batches.

Training batches (seeds 10000+) and test batches (seeds 30000+) never overlap. Every detector is
fitted on the clean training batches only; nothing is tuned on the test seeds. Test batches:

- clean: false-alarm episodes per 100 clean batch-hours, per detector group and for the ensemble;
- attacked: each scenario (``_twin_scenarios``) on the same test seeds, reporting path (the
  published samples of the clean batch are falsified) or in the loop (the batch is re-simulated
  with the primitive at the instrument or in the controller, ``InLoopPlant``);
- process faults 1-5 (``aseptic.twin.Fault``): non-malicious upsets, which should be reported as
  process faults (``Finding.cause``), not as attacks.

A batch counts as detected by a group when a Finding of that group opens inside the attack window
``[start, end]``; time to detect is from the attack start to that Finding. Work is spread over
``workers`` processes (one batch per task).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from aseptic.bench._twin_budget import Calibration, calibrate_model_group, inflated
from aseptic.bench._twin_scenarios import (
    ATTACK_H,
    PROCESS_FAULTS,
    SCENARIOS,
    START_H,
    Scenario,
    attacked_tag,
    build_attacks,
)
from aseptic.campaign import InLoopPlant, apply_attacks
from aseptic.clock import SimClock
from aseptic.config import DetectSettings
from aseptic.detect import (
    BatchModel,
    ControlLoopDetector,
    Detector,
    Engine,
    Finding,
    MspcDetector,
    PhysicsDetector,
    RecipeDetector,
    RedundancyDetector,
    ReplayDetector,
    ResidualCusum,
    StaleValueDetector,
    TwinResidualDetector,
    alarm_episodes,
    fit_model,
)
from aseptic.errors import ConfigError
from aseptic.twin import Fault, PaaControl, simulate_batches

__all__ = [
    "GROUPS",
    "PAA_CONTROL",
    "TEST_SEED",
    "TRAIN_SEED",
    "batch_samples",
    "detector_group",
    "fit_calibrated",
    "fit_detectors",
    "init_worker",
    "run_twin_bench",
    "score_samples",
]

TRAIN_SEED, TEST_SEED = 10_000, 30_000
GROUPS = ("mspc", "stale", "replay", "physics", "twin", "control", "redundancy", "ensemble")
_PREFIX = {"mspc": "mspc", "cusum": "mspc", "recipe": "mspc"}
# Fast mode: the PAA loop on the true PAA, no Raman spectra (docs/bench-twin.md).
PAA_CONTROL: PaaControl = "true"
Sample = dict[str, float]
Progress = Callable[[int, int], None]


def detector_group(statistic: str) -> str:
    head = statistic.split(".", 1)[0]
    return _PREFIX.get(head, head)


def batch_samples(batch: Any) -> list[Sample]:
    names = list(batch.tags)
    return [{n: float(batch.tags[n][i]) for n in names} for i in range(batch.time_h.size)]


@dataclass(frozen=True)
class _Task:
    kind: str  # "clean", "attack", "fault"
    index: int  # test batch index
    scenario: Scenario | None = None
    fault: int = 0


_DETECTORS: list[Detector] = []


def init_worker(detectors: list[Detector]) -> None:
    global _DETECTORS
    _DETECTORS = detectors


def score_samples(samples: Sequence[Sample]) -> tuple[list[Finding], dict[str, list[tuple[int, int]]], int]:
    findings: list[Finding] = []
    engine = Engine(_DETECTORS, findings.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("bench")
    block = engine.push_block(samples)  # the same verdicts as push_sample on each (ADR 0290)
    group_cols = [detector_group(s) for s in block.statistics]
    flags: dict[str, list[bool]] = {}
    for g in GROUPS[:-1]:
        cols = [j for j, name in enumerate(group_cols) if name == g]
        flags[g] = (
            [bool(f) for f in np.asarray(block.confirmed[:, cols].any(axis=1), dtype=bool)]
            if cols
            else [False] * len(block)
        )
    flags["ensemble"] = [bool(f) for f in block.alarmed]
    return findings, {g: alarm_episodes(f) for g, f in flags.items()}, len(samples)


def _run(task: _Task) -> dict[str, Any]:
    seed = TEST_SEED + task.index
    if task.kind == "fault":
        batch = simulate_batches(1, seed, faults=[task.fault], paa_control=PAA_CONTROL)[0]
        samples = batch_samples(batch)
    elif task.kind == "clean" or task.scenario is None:
        samples = batch_samples(simulate_batches(1, seed, paa_control=PAA_CONTROL)[0])
    elif task.scenario.placement == "reporting":
        attacks = build_attacks(task.scenario, attacked_tag(task.index))
        clean = batch_samples(simulate_batches(1, seed, paa_control=PAA_CONTROL)[0])
        samples = [apply_attacks(attacks, s["batch_time_h"], s) for s in clean]
    else:
        plant = InLoopPlant(
            seed, build_attacks(task.scenario, attacked_tag(task.index)), paa_control=PAA_CONTROL
        )
        samples = []
        while not plant.finished:
            samples.append(plant.step())
    findings, episodes, n = score_samples(samples)
    return {
        "task": task,
        "samples": n,
        "hours": n * 0.2,
        "episodes": {g: len(e) for g, e in episodes.items()},
        "findings": [
            (
                f.batch_time_h,
                detector_group(f.detector),
                f.detector,
                f.tags[:1],
                f.technique,
                f.cause,
                f.process_fault,
            )
            for f in findings
        ],
    }


# Ensemble false-alarm budget (episodes / 100 clean batch-hours) the fit calibrates to on held-out
# clean training batches (ADR 0340); the goal is 0.5, the rest is margin.
FA_BUDGET_PER_100H = 0.4
# Fewer training batches than this: no holdout, the model group keeps its settings as given.
MIN_CALIBRATION_BATCHES = 8


def _integrity_checks() -> list[Detector]:
    return [
        StaleValueDetector(),
        ReplayDetector(),
        PhysicsDetector(),
        TwinResidualDetector(),
        ControlLoopDetector(),
        RedundancyDetector(),
    ]


def _model_group(model: BatchModel, factor: float = 1.0) -> list[Detector]:
    widened = inflated(model, factor)
    return [MspcDetector(widened), ResidualCusum(widened), RecipeDetector(widened)]


def _fitted_integrity(batches: Sequence[Sequence[Sample]]) -> list[Detector]:
    checks = _integrity_checks()
    for check in checks:
        check.fit([list(b) for b in batches])
    return checks


def fit_calibrated(
    train_batches: int,
    settings: DetectSettings | None = None,
    *,
    duration_h: float | None = None,
    budget_per_100h: float | None = FA_BUDGET_PER_100H,
) -> tuple[list[Detector], Calibration | None]:
    """``fit_detectors`` and the budget calibration it made (None: not calibrated).

    With ``budget_per_100h`` set and at least ``MIN_CALIBRATION_BATCHES`` training batches, the
    last quarter of the training batches is held out, the model group's limits are widened until
    the ensemble's held-out rate fits the budget (``calibrate_model_group``), and every detector is
    then refitted on all training batches, the model group's limits widened by the same factor.
    """
    simulated = simulate_batches(train_batches, TRAIN_SEED, duration_h=duration_h, paa_control=PAA_CONTROL)
    batches = [batch_samples(b) for b in simulated]
    calibration: Calibration | None = None
    factor = 1.0
    if budget_per_100h is not None and train_batches >= MIN_CALIBRATION_BATCHES:
        held = max(2, train_batches // 4)
        fit_part, holdout = batches[:-held], batches[-held:]
        part_model = fit_model(fit_part, settings, seed=0)
        calibration = calibrate_model_group(
            lambda f: _model_group(part_model, f),
            _fitted_integrity(fit_part),
            holdout,
            detector_group,
            budget_per_100h=budget_per_100h,
            persistence=(settings or DetectSettings()).persistence_samples,
        )
        factor = calibration.factor
    model = fit_model(batches, settings, seed=0)
    return _model_group(model, factor) + _fitted_integrity(batches), calibration


def fit_detectors(
    train_batches: int, settings: DetectSettings | None = None, *, duration_h: float | None = None
) -> list[Detector]:
    """The bench's detector set fitted on clean training batches (seeds 10000+, ``duration_h`` long).

    The model group's limits are calibrated to the ensemble's false-alarm budget on held-out
    training batches (``fit_calibrated``, ADR 0340).
    """
    return fit_calibrated(train_batches, settings, duration_h=duration_h)[0]


def run_twin_bench(
    batches: int,
    out: Path,
    *,
    train_batches: int = 20,
    workers: int = 2,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the bench with ``batches`` clean test batches and ``batches`` attacked batches per scenario.

    Writes ``out/twin.json`` and returns its content.

    Raises:
        ConfigError: ``batches`` < 1, ``train_batches`` < 3 or ``workers`` < 1.
        OSError: ``out`` cannot be written.
    """
    if batches < 1 or train_batches < 3 or workers < 1:
        raise ConfigError(
            f"bench twin needs batches >= 1, train batches >= 3 and workers >= 1 "
            f"(got {batches}, {train_batches}, {workers})"
        )
    t0 = time.perf_counter()
    detectors, calibration = fit_calibrated(train_batches)
    fit_s = time.perf_counter() - t0
    tasks = [_Task("clean", i) for i in range(batches)]
    tasks += [_Task("attack", i, scenario=s) for s in SCENARIOS for i in range(batches)]
    tasks += [_Task("fault", i, fault=f) for f in PROCESS_FAULTS for i in range(batches)]
    results: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, initializer=init_worker, initargs=(detectors,)) as pool:
        for done, result in enumerate(pool.map(_run, tasks, chunksize=1), start=1):
            results.append(result)
            if progress is not None:
                progress(done, len(tasks))
    report = _summarise(results, batches, train_batches)
    report["calibration"] = calibration.as_dict() if calibration is not None else None
    report["timing"] = {
        "fit_s": round(fit_s, 1),
        "score_s": round(time.perf_counter() - t1, 1),
        "workers": workers,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "twin.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return report


def _summarise(results: list[dict[str, Any]], batches: int, train_batches: int) -> dict[str, Any]:
    clean = [r for r in results if r["task"].kind == "clean"]
    hours = sum(r["hours"] for r in clean)
    false_alarms = {
        g: round(100.0 * sum(r["episodes"][g] for r in clean) / hours, 3) if hours else None for g in GROUPS
    }
    scenarios = []
    for scenario in SCENARIOS:
        runs = [r for r in results if r["task"].kind == "attack" and r["task"].scenario == scenario]
        row: dict[str, Any] = {"scenario": scenario.label, "batches": len(runs), "groups": {}}
        for g in GROUPS:
            delays = []
            for r in runs:
                hits = [
                    f[0]
                    for f in r["findings"]
                    if START_H <= f[0] <= START_H + ATTACK_H and (g == "ensemble" or f[1] == g)
                ]
                if hits:
                    delays.append(min(hits) - START_H)
            row["groups"][g] = {
                "detected": len(delays),
                "rate": round(len(delays) / len(runs), 3) if runs else None,
                "median_ttd_h": round(statistics.median(delays), 2) if delays else None,
            }
        scenarios.append(row)
    faults = []
    for fault in PROCESS_FAULTS:
        runs = [r for r in results if r["task"].kind == "fault" and r["task"].fault == fault]
        found = [f for r in runs for f in r["findings"]]
        with_findings = sum(1 for r in runs if r["findings"])
        faults.append(
            {
                "fault": fault,
                "batches": len(runs),
                "batches_with_findings": with_findings,
                "findings": len(found),
                "reported_as_process_fault": sum(1 for f in found if f[5] == "process fault"),
                "reported_as_attack": sum(1 for f in found if f[5] == "attack"),
                # The operator's first alarm of the batch: does it say "process fault"?
                "first_finding_process_fault": sum(
                    1
                    for r in runs
                    if r["findings"] and min(r["findings"], key=lambda f: f[0])[5] == "process fault"
                ),
                # The named fault when it is named: is it the right one?
                "named_fault_correct": sum(1 for f in found if f[6] == Fault(fault).name),
            }
        )
    return {
        "protocol": {
            "train_seeds": [TRAIN_SEED, TRAIN_SEED + train_batches - 1],
            "test_seeds": [TEST_SEED, TEST_SEED + batches - 1],
            "batches_per_scenario": batches,
            "attack_window_h": [START_H, START_H + ATTACK_H],
            "paa_control": PAA_CONTROL,
        },
        "clean": {"batches": len(clean), "hours": round(hours, 1), "fa_episodes_per_100h": false_alarms},
        "scenarios": scenarios,
        "process_faults": faults,
    }

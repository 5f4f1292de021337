"""Campaign throughput: attacked batch simulations run and scored per minute, lock step vs per batch.

    .venv/bin/python -m benchmarks.campaign_throughput [--batches 2] [--workers 2] [--train-batches 10]
        [--scenarios all|process|library] [--scoring block|sample|both] [--reuse on|off|both]
        [--no-per-batch] [--data DIR] [--json]

Both paths run the same scenarios of the shipped library on the same seeds (50000+), with the same
detector set fitted once (``aseptic.bench.fit_detectors``, not timed) and ``--workers`` processes:

- baseline, the session-2 runner: one task per batch; the batch is stepped alone in an
  ``InLoopPlant`` (the twin's engine with one batch), its published samples falsified by the
  view-path primitives, and every sample scored by the streaming engine;
- lock step, ``aseptic.campaign.run_campaign`` (the session-3 runner): one task per seed, every
  scenario's batch of that seed and the clean companion in one ``PlantFleet``, each attacked batch
  scored from the first sample that differs from the clean batch up to its detection horizon.

The baseline can execute only the process primitives (sensor spoofing and setpoint tampering), so
``--scenarios process`` (default) compares those; ``--scenarios all`` times the lock-step runner on
the whole library as well (platform and soft-sensor scenarios included; the baseline still runs
only what it can). Attacked batches per minute = attacked batches / wall time of the scoring phase
(clean companions are simulated and scored too, but not counted); "per minute of 2 CPU cores" =
attacked batches / worker CPU seconds x 120, what 2 cores nobody else uses would run (the shared
machine's load is printed beside it).

``--scoring`` picks how the lock-step runner scores (``run_campaign(scoring=...)``): ``block``
(default, ``Engine.push_block`` per attacked stretch), ``sample`` (``push_sample`` per sample, the
session-3 path) or ``both`` (one lock-step row of each per scenario set, same run).
``--reuse`` picks whether the platform watches reuse verification and decision outcomes of
identical inputs (``run_campaign(reuse=...)``, ADR 0370): ``on`` (default), ``off`` (the session-3
path) or ``both`` (the session-3 path first, then the reusing one, same run). ``--scenarios
library`` times the whole library only. ``--no-per-batch`` skips the session-2 baseline.

The last lines print, per lock-step row, ``WALL: N attacked batches per minute`` (attacked batches
/ wall seconds of the scoring phase, pool start included) beside the CPU figure and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aseptic.bench import PAA_CONTROL, fit_detectors
from aseptic.campaign import (
    CAMPAIGN_SEED,
    InLoopPlant,
    Scenario,
    apply_attacks,
    build_attack,
    load_library,
    run_campaign,
)
from aseptic.clock import SimClock
from aseptic.detect import Detector, Engine

PROCESS = {
    "sensor_bias",
    "sensor_ramp",
    "sensor_surge",
    "sensor_geometric",
    "sensor_replay",
    "sensor_stale",
    "setpoint_tamper",
}
_DETECTORS: list[Detector] = []


def _init(detectors: list[Detector]) -> None:
    global _DETECTORS
    _DETECTORS = detectors


def _baseline_batch(task: tuple[Scenario, int]) -> int:
    """The session-2 per-batch path: one batch stepped alone, every sample scored; findings count."""
    scenario, seed = task
    duration = scenario.preconditions.batch_duration_h
    loop, view = [], []
    for step in scenario.steps:
        attack = build_attack(step, duration)
        on_loop = step.primitive == "setpoint_tamper" or step.params.get("path", "view") == "loop"
        (loop if on_loop else view).append(attack)
    plant = InLoopPlant(seed, loop, duration_h=duration, paa_control=PAA_CONTROL)
    findings: list[Any] = []
    engine = Engine(_DETECTORS, findings.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("baseline")
    while not plant.finished:
        values = plant.step()
        plant.plant.true_state()  # the impact bookkeeping of the old runner
        engine.push_sample(apply_attacks(view, values["batch_time_h"], values) if view else values)
    return len(findings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=2, help="batches per scenario")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-batches", type=int, default=10)
    parser.add_argument("--scenarios", choices=("process", "all", "library"), default="process")
    parser.add_argument("--scoring", choices=("block", "sample", "both"), default="block")
    parser.add_argument("--reuse", choices=("on", "off", "both"), default="on")
    parser.add_argument("--no-per-batch", action="store_true", help="skip the session-2 baseline")
    parser.add_argument("--data", type=Path, default=None, help="write DIR/campaign_throughput.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    library = load_library([])
    process = [s for s in library if all(st.primitive in PROCESS for st in s.steps)]
    seeds = [CAMPAIGN_SEED + i for i in range(args.batches)]
    load_before = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    # Only the per-batch baseline uses these (run_campaign fits its own, not timed).
    detectors = fit_detectors(args.train_batches) if not args.no_per_batch else []
    fit_s = time.perf_counter() - t0

    rows: dict[str, Any] = {}
    if not args.no_per_batch:
        # Baseline: one batch per task (what the session-2 runner did), clean batches not counted.
        tasks = [(s, seed) for s in process for seed in seeds]
        t1 = time.perf_counter()
        cpu1 = os.times()
        with ProcessPoolExecutor(max_workers=args.workers, initializer=_init, initargs=(detectors,)) as pool:
            list(pool.map(_baseline_batch, tasks, chunksize=1))
        base_s = time.perf_counter() - t1
        base_cpu = _children_cpu(cpu1)

        rows["baseline (per batch, process scenarios)"] = {
            "attacked_batches": len(tasks),
            "wall_s": round(base_s, 1),
            "children_cpu_s": base_cpu,
            "attacked_batches_per_min": round(60.0 * len(tasks) / base_s, 1),
            "per_min_on_2_free_cores": round(120.0 * len(tasks) / base_cpu, 1) if base_cpu else None,
        }
    scorings = ("sample", "block") if args.scoring == "both" else (args.scoring,)
    reuses = (False, True) if args.reuse == "both" else (args.reuse == "on",)
    chosen = {} if args.scenarios == "library" else {"process scenarios": process}
    if args.scenarios in ("all", "library"):
        chosen["whole library"] = library
    for what, scenarios in chosen.items():
        for scoring in scorings:
            for reuse in reuses:
                label = f"lock step, {scoring} scoring, reuse {'on' if reuse else 'off'} ({what})"
                rows[label] = _lock_step(scenarios, args, scoring, reuse)
    result = {
        "batches_per_scenario": args.batches,
        "workers": args.workers,
        "process_scenarios": len(process),
        "library_scenarios": len(library),
        "detector_fit_s": round(fit_s, 1),
        "load_average_before": load_before,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=True)
        (args.data / "campaign_throughput.json").write_text(
            json.dumps(result, indent=2) + "\n", encoding="utf-8"
        )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.batches} batches per scenario, {args.workers} workers, load average before {load_before}")
    for label, row in rows.items():
        print(
            f"{label:48} {row['attacked_batches']:4} attacked batches in {row['wall_s']:7.1f} s wall "
            f"({row['children_cpu_s']:7.1f} s worker CPU): {row['attacked_batches_per_min']:6.1f} per minute"
            f" wall, {row['per_min_on_2_free_cores']} per minute of 2 CPU cores"
        )
    print(f"load average after: {[round(x, 2) for x in os.getloadavg()]}")
    for label, row in rows.items():
        if label.startswith("lock step"):
            print(f"WALL: {row['attacked_batches_per_min']:6.1f} attacked batches per minute  [{label}]")


def _lock_step(
    scenarios: list[Scenario], args: argparse.Namespace, scoring: str, reuse: bool
) -> dict[str, Any]:
    cpu = os.times()
    load = round(os.getloadavg()[0], 2)
    report = run_campaign(
        scenarios,
        batches=args.batches,
        train_batches=args.train_batches,
        workers=args.workers,
        scoring=scoring,
        reuse=reuse,
    )
    timing = report["timing"]
    worker_cpu = _children_cpu(cpu)
    return {
        "attacked_batches": timing["attacked_batches"],
        "clean_batches": timing["clean_batches"],
        "wall_s": timing["score_s"],
        "fit_s": timing["fit_s"],
        "children_cpu_s": worker_cpu,
        "attacked_batches_per_min": timing["attacked_batches_per_min"],
        "per_min_on_2_free_cores": round(120.0 * timing["attacked_batches"] / worker_cpu, 1)
        if worker_cpu
        else None,
        "load_average_1min_at_start": load,
    }


def _children_cpu(before: os.times_result) -> float:
    now = os.times()
    return round(
        (now.children_user - before.children_user) + (now.children_system - before.children_system), 1
    )


if __name__ == "__main__":
    main()

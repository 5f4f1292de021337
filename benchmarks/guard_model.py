"""The model guard on the twin: detection rate and time to detect for soft-sensor attacks, false alarms.

    .venv/bin/python -m benchmarks.guard_model [--training 8] [--test 10] [--attack-h 60] [--json]

Training: the guard's limits are calibrated on clean batches with seeds 1000.. (``--training``);
the shadow model and the spectral monitor are fitted on calibration spectra of their own seeds
(independent of the primary's 20190601). Test: batches with seeds 5000.. (``--test``), distinct from
every training seed. Per test seed:

- clean: the guard's Findings are false alarms (per 100 batch-hours);
- poisoned: the plant runs a soft sensor trained on poisoned labels (+400 mg/L for 600-1800 mg/L)
  from the start; its attack starts when the PAA loop closes (10 h);
- replaced: the soft sensor is swapped at ``--attack-h`` for one reading 0.7 x the truth
  (the running model's digest is *not* reported: an attacker in the controller can lie about it);
- adversarial drift: from ``--attack-h`` each spectrum is moved along the model's weights, ramped over
  20 h to -500 mg/L (strong) or over 40 h to -150 mg/L (subtle).

Each attack runs twice: without the fallback (per-check detection times; what PAA does when nobody
acts) and with it (the loop switches to assay-based control at the first Finding). Baseline, same
runs: the offline-assay cross-check alone (what a plant without the guard would notice).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aseptic.guard import (
    GuardedRun,
    GuardLimits,
    ModelGuard,
    SpectralMonitor,
    adversarial_drift,
    calibrate_limits,
    poisoned_soft_sensor,
    replacement_soft_sensor,
    run_guarded_batch,
)
from aseptic.twin import PaaSoftSensor, Plant, default_soft_sensor, simulate_calibration

START = datetime(2026, 1, 1, tzinfo=UTC)
LOOP_CLOSES_H = 10.0


def _guard(shadow: PaaSoftSensor, monitor: SpectralMonitor, limits: GuardLimits, batch: str) -> ModelGuard:
    return ModelGuard(
        deployed_digest=default_soft_sensor().digest,
        shadow=shadow,
        monitor=monitor,
        limits=limits,
        batch_id=batch,
    )


def _first(run: GuardedRun, checks: tuple[str, ...] | None = None) -> float | None:
    times = [f.batch_time_h for f in run.findings if checks is None or f.check in checks]
    return min(times) if times else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--training", type=int, default=8, help="clean training batches (seeds 1000..)")
    parser.add_argument("--test", type=int, default=10, help="test batches per scenario (seeds 5000..)")
    parser.add_argument(
        "--attack-h", type=float, default=60.0, help="when replaced/adversarial attacks start"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--data", type=Path, default=None, help="also write the results to DIR/guard_model.json"
    )
    args = parser.parse_args()
    cpu0 = time.process_time()

    primary = default_soft_sensor()
    shadow = PaaSoftSensor().fit(*simulate_calibration(31_000, 400))
    monitor = SpectralMonitor.fit(primary, simulate_calibration(31_001, 600)[0])
    loose = GuardLimits(
        shadow_mg_per_l=1e9,
        assay_mg_per_l=1e9,
        consumption_low_mg_per_l_per_h=-1e9,
        consumption_high_mg_per_l_per_h=1e9,
    )
    diagnostics = []
    for seed in range(1000, 1000 + args.training):
        guard = _guard(shadow, monitor, loose, f"train-{seed}")
        run_guarded_batch(Plant(seed), guard, start=START, fallback=False)
        diagnostics.append(guard.diagnostics)
    limits = calibrate_limits(diagnostics)
    poisoned = poisoned_soft_sensor()
    replacement = replacement_soft_sensor()
    at = args.attack_h

    scenarios: dict[str, tuple[float, Callable[[int], Plant], dict[str, Any]]] = {
        "poisoned": (LOOP_CLOSES_H, lambda s: Plant(s, soft_sensor=poisoned), {}),
        "replaced": (at, lambda s: Plant(s), {"replace_at_h": at, "replacement": replacement}),
        "adversarial drift, strong (-500 mg/L over 20 h)": (
            at,
            lambda s: Plant(
                s, spectrum_tamper=adversarial_drift(primary, start_h=at, ramp_h=20, shift_mg_per_l=-500)
            ),
            {},
        ),
        "adversarial drift, subtle (-150 mg/L over 40 h)": (
            at,
            lambda s: Plant(
                s, spectrum_tamper=adversarial_drift(primary, start_h=at, ramp_h=40, shift_mg_per_l=-150)
            ),
            {},
        ),
    }
    test_seeds = range(5000, 5000 + args.test)
    clean_hours, clean_alarms, clean_max = 0.0, 0, []
    for seed in test_seeds:
        run = run_guarded_batch(Plant(seed), _guard(shadow, monitor, limits, f"clean-{seed}"), start=START)
        clean_hours += run.batch_hours - LOOP_CLOSES_H
        clean_alarms += len(run.findings)
        clean_max.append(run.max_true_paa_mg_per_l)
    results: dict[str, Any] = {
        "limits": {k: round(v, 2) if isinstance(v, float) else v for k, v in vars(limits).items()},
        "clean": {
            "batches": args.test,
            "batch_hours": round(clean_hours, 1),
            "false_alarms": clean_alarms,
            "false_alarms_per_100_batch_hours": round(100.0 * clean_alarms / clean_hours, 3),
            "max_true_paa_mg_per_l": round(max(clean_max)),
        },
        "attacks": {},
    }
    for name, (start_h, make, options) in scenarios.items():
        guard_delays, assay_delays, checks, peaks_open, peaks_guarded = [], [], [], [], []
        lows_open, lows_guarded = [], []
        for seed in test_seeds:
            open_loop = run_guarded_batch(
                make(seed), _guard(shadow, monitor, limits, name), start=START, fallback=False, **options
            )
            guarded = run_guarded_batch(
                make(seed), _guard(shadow, monitor, limits, name), start=START, **options
            )
            first = _first(open_loop)
            if first is not None and first >= start_h - 1e-9:
                guard_delays.append(first - start_h)
                checks.append(next(f for f in open_loop.findings if f.batch_time_h == first).technique)
            assay = _first(open_loop, ("assay",))
            if assay is not None and assay >= start_h:
                assay_delays.append(assay - start_h)
            peaks_open.append(open_loop.max_true_paa_mg_per_l)
            peaks_guarded.append(guarded.max_true_paa_mg_per_l)
            lows_open.append(open_loop.min_true_paa_mg_per_l)
            lows_guarded.append(guarded.min_true_paa_mg_per_l)
        results["attacks"][name] = {
            "detected": f"{len(guard_delays)}/{args.test}",
            "median_time_to_detect_h": round(statistics.median(guard_delays), 2) if guard_delays else None,
            "max_time_to_detect_h": round(max(guard_delays), 2) if guard_delays else None,
            "first_technique": sorted(set(checks)),
            "baseline_assay_only_detected": f"{len(assay_delays)}/{args.test}",
            "baseline_assay_only_median_h": round(statistics.median(assay_delays), 2)
            if assay_delays
            else None,
            "true_paa_peak_without_fallback": round(statistics.median(peaks_open)),
            "true_paa_peak_with_fallback": round(statistics.median(peaks_guarded)),
            "true_paa_low_without_fallback": round(statistics.median(lows_open)),
            "true_paa_low_with_fallback": round(statistics.median(lows_guarded)),
        }
    results["cpu_s"] = round(time.process_time() - cpu0, 1)
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=True)
        (args.data / "guard_model.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    c = results["clean"]
    print(f"limits: {results['limits']}")
    print(
        f"clean: {c['false_alarms']} false alarms in {c['batch_hours']} batch-hours "
        f"= {c['false_alarms_per_100_batch_hours']} per 100 batch-hours; "
        f"max true PAA {c['max_true_paa_mg_per_l']}"
    )
    print(
        "| attack | detected | median / max time to detect (h) | technique | assay-only baseline: detected, "
        "median (h) | true PAA after 20 h, median low-peak (mg/L): without fallback | with fallback |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results["attacks"].items():
        print(
            f"| {name} | {r['detected']} | {r['median_time_to_detect_h']} / {r['max_time_to_detect_h']} | "
            f"{', '.join(r['first_technique'])} | {r['baseline_assay_only_detected']}, "
            f"{r['baseline_assay_only_median_h']} | {r['true_paa_low_without_fallback']}-"
            f"{r['true_paa_peak_without_fallback']} | {r['true_paa_low_with_fallback']}-"
            f"{r['true_paa_peak_with_fallback']} |"
        )
    print(f"CPU: {results['cpu_s']} s")


if __name__ == "__main__":
    main()

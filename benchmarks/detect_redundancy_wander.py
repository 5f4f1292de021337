"""Check instruments: how the check elements' wander sets the redundancy detector's time to detect.

    nice .venv/bin/python -m benchmarks.detect_redundancy_wander [--batches 10] [--wander 0,0.5,1,2]
        [--k 0.75] [--seed-base 30000] [--json]

A sensitivity of the *plant* (ADR 0400), not a tuning: the twin keeps its stated error model
(``aseptic.twin._sensors.CHECK_ERRORS``). For each scale the check elements' random-walk wander is
multiplied by it (offset and drift unchanged) in this process and its workers; the redundancy
detector alone is fitted on the twin bench's training seeds (10000-10019) at that scale and scores
the twin bench's test seeds (30000+): clean batches (false-alarm episodes per 100 batch-hours) and
the bench's in-loop ramp, geometric and bias attacks (temperature on even, pH on odd indices,
window 100-140 h). Prints detected / batches and the median time to detect per attack.
``--seed-base`` scores other seeds than the bench's test seeds (e.g. 20000: neither training nor
test) and ``--k`` sets the CUSUM reference (default: the detector's), for the checks of ADR 0400.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

from aseptic.bench import TRAIN_SEED
from aseptic.bench._twin import PAA_CONTROL, TEST_SEED, batch_samples
from aseptic.bench._twin_scenarios import ATTACK_H, START_H, Scenario, attacked_tag, build_attacks
from aseptic.campaign import InLoopPlant
from aseptic.clock import SimClock
from aseptic.detect import Engine, Finding, RedundancyDetector
from aseptic.detect._redundancy import REFERENCE_K
from aseptic.twin import _sensors, simulate_batches

KINDS = ("ramp", "geometric", "bias")
_NOMINAL = dict(_sensors.CHECK_ERRORS)
_DETECTOR: RedundancyDetector | None = None


def _scale_wander(scale: float) -> None:
    for tag, spec in _NOMINAL.items():
        _sensors.CHECK_ERRORS[tag] = dataclasses.replace(
            spec, wander_sd_per_sample=spec.wander_sd_per_sample * scale
        )


def _init(scale: float, detector: RedundancyDetector) -> None:
    global _DETECTOR
    _scale_wander(scale)
    _DETECTOR = detector


def _run(task: tuple[str, int, int]) -> tuple[str, int, list[float], float]:
    kind, i, seed_base = task
    seed = seed_base + i
    if kind == "clean":
        samples = batch_samples(simulate_batches(1, seed, paa_control=PAA_CONTROL)[0])
    else:
        plant = InLoopPlant(
            seed, build_attacks(Scenario(kind, "in-loop"), attacked_tag(i)), paa_control=PAA_CONTROL
        )
        samples = []
        while not plant.finished:
            samples.append(plant.step())
    assert _DETECTOR is not None
    found: list[Finding] = []
    engine = Engine([_DETECTOR], found.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("bench")
    engine.push_block(samples)
    return kind, i, [f.batch_time_h for f in found], len(samples) * 0.2


def measure(
    scale: float, batches: int, train_batches: int, workers: int, *, k: float, seed_base: int
) -> dict[str, Any]:
    _scale_wander(scale)
    detector = RedundancyDetector(k=k)
    detector.fit(
        [batch_samples(b) for b in simulate_batches(train_batches, TRAIN_SEED, paa_control=PAA_CONTROL)]
    )
    tasks = [("clean", i, seed_base) for i in range(batches)]
    tasks += [(kind, i, seed_base) for kind in KINDS for i in range(batches)]
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(scale, detector)) as pool:
        results = list(pool.map(_run, tasks))
    clean = [r for r in results if r[0] == "clean"]
    hours = sum(r[3] for r in clean)
    row: dict[str, Any] = {
        "wander_scale": scale,
        "k": k,
        "seeds": [seed_base, seed_base + batches - 1],
        "limit": round(detector.limit, 3),
        "fa_episodes_per_100h": round(100.0 * sum(len(r[2]) for r in clean) / hours, 3),
    }
    for kind in KINDS:
        delays = []
        for r in results:
            hits = [t for t in r[2] if r[0] == kind and START_H <= t <= START_H + ATTACK_H]
            if hits:
                delays.append(round(min(hits) - START_H, 2))
        row[kind] = {
            "detected": len(delays),
            "batches": batches,
            "median_ttd_h": round(statistics.median(delays), 2) if delays else None,
            "ttd_h": delays,
        }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--train-batches", type=int, default=20)
    parser.add_argument("--wander", default="0,0.5,1,2", help="comma-separated scales of the twin's wander")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--k", type=float, default=REFERENCE_K, help="CUSUM reference, in innovation sds")
    parser.add_argument("--seed-base", type=int, default=TEST_SEED, help="first scored seed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    scales = [float(x) for x in args.wander.split(",")]
    rows = []
    for scale in scales:
        row = measure(
            scale, args.batches, args.train_batches, args.workers, k=args.k, seed_base=args.seed_base
        )
        rows.append(row)
        print(
            f"seeds {args.seed_base}+ k {args.k} wander x{scale:<4} limit {row['limit']:6.2f}  "
            f"FA/100h {row['fa_episodes_per_100h']:.2f}  "
            + "  ".join(
                f"{k} {row[k]['detected']}/{row[k]['batches']} {row[k]['median_ttd_h']} h" for k in KINDS
            ),
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

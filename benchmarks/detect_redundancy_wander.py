"""Check instruments: how the check elements' wander sets the redundancy detector's time to detect.

    nice -n 19 .venv/bin/python -m benchmarks.detect_redundancy_wander [--batches 10] [--wander 0,0.5,1,2]
        [--k 0.75] [--seed-base 30000] [--trend] [--trend-window-h 20] [--workers 1] [--cache DIR] [--json]

A sensitivity of the *plant* (ADR 0400), not a tuning: the twin keeps its stated error model
(``aseptic.twin._sensors.CHECK_ERRORS``). For each scale the check elements' random-walk wander is
multiplied by it (offset and drift unchanged) in this process and its workers; the redundancy
detector alone is fitted on the twin bench's training seeds (10000-10019) at that scale and scores
the twin bench's test seeds (30000+): clean batches (false-alarm episodes per 100 batch-hours) and
the bench's in-loop ramp, geometric and bias attacks (temperature on even, pH on odd indices,
window 100-140 h). Prints detected / batches and the median time to detect per attack.
``--seed-base`` scores other seeds than the bench's test seeds (e.g. 20000: neither training nor
test) and ``--k`` sets the CUSUM reference (default: the detector's), for the checks of ADR 0400.
``--trend`` adds the ramp GLR of ADR 0401 (``--trend-window-h``: its window): the rows then give,
from the same run, the CUSUM alone (``disagreement``: ADR 0400's detector), the GLR alone
(``trend``) and the detector (``either``). ``--cache DIR`` keeps the simulated batches (they do not
depend on the detector) for repeated runs; ``--workers`` defaults to 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
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
_CACHE: Path | None = None


def _scale_wander(scale: float) -> None:
    for tag, spec in _NOMINAL.items():
        _sensors.CHECK_ERRORS[tag] = dataclasses.replace(
            spec, wander_sd_per_sample=spec.wander_sd_per_sample * scale
        )


def _init(scale: float, detector: RedundancyDetector, cache: Path | None) -> None:
    global _DETECTOR, _CACHE
    _scale_wander(scale)
    _DETECTOR, _CACHE = detector, cache


def _cached(key: str, make: Any) -> Any:
    """``make()``, kept in ``--cache DIR`` (the twin's batches do not depend on the detector)."""
    if _CACHE is None:
        return make()
    path = _CACHE / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    _CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return value


def _simulate(kind: str, i: int, seed: int) -> list[dict[str, float]]:
    if kind == "clean":
        return batch_samples(simulate_batches(1, seed, paa_control=PAA_CONTROL)[0])
    plant = InLoopPlant(
        seed, build_attacks(Scenario(kind, "in-loop"), attacked_tag(i)), paa_control=PAA_CONTROL
    )
    samples = []
    while not plant.finished:
        samples.append(plant.step())
    return samples


def _run(task: tuple[str, int, int, float]) -> tuple[str, int, list[tuple[str, float]], float]:
    kind, i, seed_base, scale = task
    seed = seed_base + i
    samples = _cached(f"w{scale}-{kind}-{i}-{seed}", lambda: _simulate(kind, i, seed))
    assert _DETECTOR is not None
    found: list[Finding] = []
    engine = Engine([_DETECTOR], found.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("bench")
    engine.push_block(samples)
    return kind, i, [(f.detector, f.batch_time_h) for f in found], len(samples) * 0.2


def measure(
    scale: float,
    batches: int,
    train_batches: int,
    workers: int,
    *,
    k: float,
    seed_base: int,
    cache: Path | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One wander scale: fit on the training seeds, score ``batches`` clean and attacked seeds.

    Per kind the row has the first finding of each statistic alone (``disagreement``: the CUSUM,
    ``trend``: the GLR of ADR 0401) and of the detector (``either``), all from the same run."""
    global _CACHE
    _CACHE = cache
    _scale_wander(scale)
    detector = RedundancyDetector(k=k, **(options or {}))
    train = _cached(
        f"w{scale}-train-{TRAIN_SEED}-{train_batches}",
        lambda: [
            batch_samples(b) for b in simulate_batches(train_batches, TRAIN_SEED, paa_control=PAA_CONTROL)
        ],
    )
    detector.fit(train)
    tasks = [("clean", i, seed_base, scale) for i in range(batches)]
    tasks += [(kind, i, seed_base, scale) for kind in KINDS for i in range(batches)]
    if workers == 1:
        _init(scale, detector, cache)
        results = [_run(task) for task in tasks]
    else:
        with ProcessPoolExecutor(workers, initializer=_init, initargs=(scale, detector, cache)) as pool:
            results = list(pool.map(_run, tasks))
    clean = [r for r in results if r[0] == "clean"]
    hours = sum(r[3] for r in clean)
    row: dict[str, Any] = {
        "wander_scale": scale,
        "k": k,
        "options": options or {},
        "seeds": [seed_base, seed_base + batches - 1],
        "limits": {s: round(v, 3) for s, v in detector.limits().items()},
    }
    for label in STATISTICS if "trend" in row["limits"] else STATISTICS[:1]:
        per: dict[str, Any] = {
            "fa_episodes_per_100h": round(
                100.0 * sum(1 for r in clean for f in r[2] if _counts(label, f[0])) / hours, 3
            )
        }
        for kind in KINDS:
            delays = []
            for r in results:
                hits = [
                    t
                    for statistic, t in r[2]
                    if r[0] == kind and _counts(label, statistic) and START_H <= t <= START_H + ATTACK_H
                ]
                if hits:
                    delays.append(round(min(hits) - START_H, 2))
            per[kind] = {
                "detected": len(delays),
                "batches": batches,
                "median_ttd_h": round(statistics.median(delays), 2) if delays else None,
                "ttd_h": delays,
            }
        row[label] = per
    return row


STATISTICS = ("disagreement", "trend", "either")


def _counts(label: str, statistic: str) -> bool:
    return label == "either" or statistic.endswith("." + label)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--train-batches", type=int, default=20)
    parser.add_argument("--wander", default="0,0.5,1,2", help="comma-separated scales of the twin's wander")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1: a shared machine)"
    )
    parser.add_argument("--k", type=float, default=REFERENCE_K, help="CUSUM reference, in innovation sds")
    parser.add_argument("--seed-base", type=int, default=TEST_SEED, help="first scored seed")
    parser.add_argument("--trend-window-h", type=float, default=None, help="GLR onsets searched (hours)")
    parser.add_argument("--trend", action="store_true", help="add the ramp GLR (ADR 0401; off by default)")
    parser.add_argument("--cache", type=Path, default=None, help="keep simulated batches in DIR")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    scales = [float(x) for x in args.wander.split(",")]
    rows = []
    for scale in scales:
        options: dict[str, Any] = {}
        if args.trend_window_h is not None:
            options["trend_window_h"] = args.trend_window_h
        if args.trend:
            options["trend"] = True
        row = measure(
            scale,
            args.batches,
            args.train_batches,
            args.workers,
            k=args.k,
            seed_base=args.seed_base,
            cache=args.cache,
            options=options,
        )
        rows.append(row)
        for label in (x for x in STATISTICS if x in row):
            per = row[label]
            print(
                f"seeds {args.seed_base}+ k {args.k} {options} wander x{scale:<4} {label:12} "
                f"limits {row['limits']}  FA/100h {per['fa_episodes_per_100h']:.2f}  "
                + "  ".join(
                    f"{k} {per[k]['detected']}/{per[k]['batches']} {per[k]['median_ttd_h']} h" for k in KINDS
                ),
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

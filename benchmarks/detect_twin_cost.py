"""Scoring cost of the twin detector ensemble: batched vs per sample vs the previous per-sample code.

    .venv/bin/python -m benchmarks.detect_twin_cost [--train-batches 8] [--rounds 3] [--baseline-ref REF]
                                                    [--detectors session3|service|bench]

The ensemble (``--detectors session3``, the default) is every detector the twin bench and the demo
ran when batched scoring was built (session 3): batch MSPC (T2, SPE, per tag), residual CUSUM,
recipe check, stale values, replayed segments, physics (balance, loops) and the twin residuals, in
one ``Engine`` (persistence 3). ``--detectors service``: what ``aseptic demo`` and ``aseptic serve``
run now, which adds the redundancy check (ADR 0400); ``--detectors bench``: what the twin bench runs
now, which also adds the control-loop check (it has no file format: fitted in each process on the
saved training batches, outside the timed region). The session-3 code has neither: those sets are
compared with previous code only when ``--baseline-ref`` names a commit that has them (e.g. the
commit before block scoring of the detectors with expected values), and then with its
``push_block`` too; without it they compare batched with per-sample scoring of this code only.
Fitted on clean training batches (seeds 10000+), saved with digests and loaded back; scored on
one test batch (seed 30000, full length) carrying a pH replay, a temperature freeze and a
dissolved-oxygen bias, so that alarms and Findings are part of what is compared.

Three ways, same loaded models, CPU time, each timed round in a fresh process of its own, the
rounds interleaved and the best of ``--rounds`` kept:

- ``push_block``: the whole batch as one block (file replay, benchmark, catch-up after a gap; the
  better of two blocks in the round's process, the first paying one-time warm-up costs);
- ``push_sample``: sample by sample, as live streaming does (this code);
- baseline: the previous code (``git archive BASELINE_REF src``, default for the session-3 set the
  commit batched scoring started from) pushing the same samples one by one, and for the other
  sets also as one block.

The benchmark fails (AssertionError) unless block and per-sample verdicts are identical bit for
bit at every sample (scores, contributions, open episodes, Findings) and the previous code gives
the same open episodes and the same Findings at every sample (their numbers to 1e-12 relative:
the previous code summed T2, SPE and the twin residuals' predictions with BLAS, in another
order, and ran the redundancy filter in 2 x 2 numpy arrays). Scores are compared with the
previous code too (printed); the replay score below its limit is defined differently now (no
candidate window: 0 instead of a lower bound, docs/adr/0290) and is excluded there.

A *tag-reading* is one value of one tag: a twin sample carries 35 (33 before the check elements).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASELINE_REF = "e9cb33a"  # main when batched scoring started
TRAIN_SEED, TEST_SEED = 10_000, 30_000
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def _samples(batch: Any) -> list[dict[str, float]]:
    names = list(batch.tags)
    return [{n: float(batch.tags[n][i]) for n in names} for i in range(batch.time_h.size)]


SESSION3 = ("stale", "replay", "physics", "twin")
SERVICE = (*SESSION3, "redundancy")  # aseptic.service's fitted detectors
BENCH = (*SESSION3, "control", "redundancy")  # aseptic.bench._twin's integrity checks, in its order
SETS = {"session3": SESSION3, "service": SERVICE, "bench": BENCH}


def _prepare(work: Path, train_batches: int, checks: Sequence[str]) -> None:
    """Fit and save the ensemble; write the attacked test batch as JSON (floats round-trip exactly)."""
    from aseptic.campaign import Bias, Freeze, Replay, apply_attacks
    from aseptic.detect import (
        ControlLoopDetector,
        PhysicsDetector,
        RedundancyDetector,
        ReplayDetector,
        StaleValueDetector,
        TwinResidualDetector,
        fit_model,
        save_detector,
        save_model,
    )
    from aseptic.twin import simulate_batches

    train = [_samples(b) for b in simulate_batches(train_batches, TRAIN_SEED, paa_control="true")]
    save_model(fit_model(train, seed=0), work / "mspc.json")
    every: list[Any] = [StaleValueDetector(), ReplayDetector(), PhysicsDetector(), TwinResidualDetector()]
    every += [ControlLoopDetector(), RedundancyDetector()]
    for detector in every:
        if detector.name in checks and detector.name != "control":
            detector.fit(train)
            save_detector(detector, work / f"{detector.name}.json")
    if "control" in checks:  # no file format: each process fits it on these batches
        (work / "train.json").write_text(json.dumps(train), encoding="utf-8")
    (work / "checks.json").write_text(json.dumps(list(checks)), encoding="utf-8")
    clean = _samples(simulate_batches(1, TEST_SEED, paa_control="true")[0])
    attacks = [
        Replay("ph", 100.0, 40.0, record_from_h=50.0),
        Freeze("temperature_k", 160.0, 10.0),
        Bias("dissolved_o2_mg_per_l", 180.0, 20.0, 3.0),
    ]
    test = [apply_attacks(attacks, s["batch_time_h"], s) for s in clean]
    (work / "samples.json").write_text(json.dumps(test), encoding="utf-8")


def _load(work: Path) -> tuple[list[Any], list[dict[str, float]]]:
    from aseptic.detect import MspcDetector, RecipeDetector, ResidualCusum, load_detector, load_model

    model = load_model(work / "mspc.json")
    detectors: list[Any] = [MspcDetector(model), ResidualCusum(model), RecipeDetector(model)]
    checks = json.loads((work / "checks.json").read_text(encoding="utf-8"))
    for name in checks:
        if name == "control":
            from aseptic.detect import ControlLoopDetector

            control = ControlLoopDetector()
            control.fit(json.loads((work / "train.json").read_text(encoding="utf-8")))
            detectors.append(control)
        else:
            detectors.append(load_detector(work / f"{name}.json"))
    samples = json.loads((work / "samples.json").read_text(encoding="utf-8"))
    return detectors, samples


def _engine(detectors: list[Any], sink: Any) -> Any:
    from aseptic.clock import SimClock
    from aseptic.detect import Engine

    engine = Engine(detectors, sink, clock=SimClock(EPOCH), persistence=3)
    engine.start_batch("B-cost")
    return engine


def _times(n: int) -> list[datetime]:
    return [EPOCH + timedelta(minutes=12 * i) for i in range(n)]


def _record(verdicts: Sequence[Any], findings: Sequence[Any]) -> dict[str, Any]:
    """What the comparison needs, JSON-able: per sample the scores and open episodes; the Findings."""
    return {
        "scores": [[[s.statistic, s.value, s.limit] for s in v.scores] for v in verdicts],
        "confirmed": [sorted(v.confirmed) for v in verdicts],
        "findings": [f.to_payload() for f in findings],
    }


def _per_sample(work: Path, rounds: int) -> tuple[float, dict[str, Any]]:
    detectors, samples = _load(work)
    times = _times(len(samples))
    best, record = math.inf, {}
    for _ in range(rounds):
        findings: list[Any] = []
        engine = _engine(detectors, findings.append)
        t0 = time.process_time()
        verdicts = [engine.push_sample(s, time=w) for s, w in zip(samples, times, strict=True)]
        best = min(best, time.process_time() - t0)
        record = _record(verdicts, findings)
    return best, record


def _extract_baseline(work: Path, ref: str) -> Path:
    """The previous code's ``src`` from git, under ``work/baseline``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "src"],
        check=True,
        capture_output=True,
    ).stdout
    old = work / "baseline"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(old, filter="data")
    return old


def _round(work: Path, src: Path, role: str) -> dict[str, Any]:
    """One timed round in a fresh child process running the code under ``src`` on the same files.

    Every timed run gets a process of its own: a parent holding the comparison records pays for
    the garbage collector walking them, which would be charged to whichever path it timed.
    """
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "benchmarks.detect_twin_cost", "--role", role]
    subprocess.run([*command, "--work", str(work)], check=True, env=env, cwd=str(work))
    result: dict[str, Any] = json.loads((work / "round.json").read_text(encoding="utf-8"))
    return result


def _detector_costs(work: Path) -> dict[str, tuple[float, float | None]]:
    """Per detector alone: CPU seconds for the batch sample by sample, and as one block (if it can)."""
    detectors, samples = _load(work)
    out: dict[str, tuple[float, float | None]] = {}
    for d in detectors:
        d.reset()
        t0 = time.process_time()
        for s in samples:
            d.score_one(s)
        one = time.process_time() - t0
        block: float | None = None
        if hasattr(d, "score_block"):
            from aseptic.detect import SampleBlock

            d.reset()
            t0 = time.process_time()
            d.score_block(SampleBlock(samples))
            block = time.process_time() - t0
        out[d.name] = (one, block)
    return out


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-12 relative (NaN equal to NaN), in nested payloads."""
    if isinstance(a, float) and isinstance(b, float):
        return _same(a, b) or math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-batches", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--baseline-ref",
        help=f"previous code to compare with (default: {BASELINE_REF} for session3, none for the others)",
    )
    p.add_argument("--cache", type=Path, help="keep the fitted models here and reuse them")
    p.add_argument(
        "--detectors",
        choices=tuple(SETS),
        default="session3",
        help="the session-3 ensemble (compared with the previous code too), the service's or the twin"
        " bench's current one",
    )
    p.add_argument("--role", choices=("main", "sample", "block"), default="main", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role == "sample":  # a timed round in a fresh process (this code or the previous one)
        seconds, record = _per_sample(args.work, 1)
        costs = _detector_costs(args.work)
        (args.work / "round.json").write_text(
            json.dumps({"seconds": seconds, "record": record, "costs": costs})
        )
        return
    if args.role == "block":  # the better of two blocks: the first pays one-time costs (warm-up)
        detectors, samples = _load(args.work)
        seconds = math.inf
        for _ in range(2):
            engine = _engine(detectors, lambda finding: None)
            t0 = time.process_time()
            engine.push_block(samples, times=_times(len(samples)))
            seconds = min(seconds, time.process_time() - t0)
        (args.work / "round.json").write_text(json.dumps({"seconds": seconds}))
        return
    with tempfile.TemporaryDirectory(prefix="aseptic-cost-") as tmp:
        work = args.cache or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        checks = SETS[args.detectors]
        cached = work / "checks.json"
        if cached.exists() and json.loads(cached.read_text(encoding="utf-8")) != list(checks):
            p.error(f"--cache {work} holds another detector set: use another directory")
        if not (work / "samples.json").exists():
            t0 = time.perf_counter()
            _prepare(work, args.train_batches, checks)
            print(f"fitted on {args.train_batches} training batches in {time.perf_counter() - t0:.0f} s")
        detectors, samples = _load(work)
        n, tags = len(samples), len(samples[0])
        times = _times(n)
        baseline_ref = args.baseline_ref or (BASELINE_REF if args.detectors == "session3" else None)
        with_previous = baseline_ref is not None
        old_block = args.detectors != "session3" and with_previous  # its push_block scores these too
        old_src = _extract_baseline(work, baseline_ref) if baseline_ref is not None else None
        # Rounds interleave the three ways (and the per-detector timings), so that the load of a
        # shared machine falls on all of them alike; the best round of each counts.
        this_src = Path(__import__("aseptic").__file__).resolve().parents[1]
        block_best = one_best = old_best = old_block_best = math.inf
        one: dict[str, Any] = {}
        old: dict[str, Any] = {}
        costs: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            block_best = min(block_best, float(_round(work, this_src, "block")["seconds"]))
            mine = _round(work, this_src, "sample")
            one_best, one = min(one_best, float(mine["seconds"])), mine["record"]
            result = mine
            if old_src is not None:
                result = _round(work, old_src / "src", "sample")
                old_best, old = min(old_best, float(result["seconds"])), result["record"]
                if old_block:
                    old_block_best = min(
                        old_block_best, float(_round(work, old_src / "src", "block")["seconds"])
                    )
            for name, (one_s, block_s) in mine["costs"].items():
                was = result["costs"][name][0] if old_src is not None else math.nan
                best = costs.setdefault(name, [math.inf, math.inf, math.inf])
                best[0], best[1] = min(best[0], was), min(best[1], one_s)
                best[2] = min(best[2], block_s if block_s is not None else one_s)
        block_findings: list[Any] = []
        block = _engine(detectors, block_findings.append).push_block(samples, times=times)
        # Block vs per sample (this code): the same bits everywhere.
        detectors, _ = _load(work)
        findings: list[Any] = []
        engine = _engine(detectors, findings.append)
        verdicts = [engine.push_sample(s, time=w) for s, w in zip(samples, times, strict=True)]
        for i, v in enumerate(verdicts):
            assert block.verdict(i) == v, f"sample {i}: block and per-sample verdicts differ"
        assert block_findings == findings, "block and per-sample Findings differ"
        assert _record(verdicts, findings) == one

        # This code vs the previous code: same open episodes and Findings at every sample.
        if not with_previous:
            old = one  # no previous-code rounds (--detectors bench): nothing to compare with
        assert one["confirmed"] == old["confirmed"], "open episodes differ from the previous code"
        assert len(one["findings"]) == len(old["findings"]), "Findings differ from the previous code"
        for a, b in zip(one["findings"], old["findings"], strict=True):
            # The previous code summed in another order (see the module's docstring): numbers may
            # differ in the last bits; every other field must be the same.
            assert _close(a, b), f"Finding differs: {a} vs {b}"
        worst: dict[str, float] = {}
        for new_row, old_row in zip(one["scores"], old["scores"], strict=True):
            for (stat, value, limit), (stat_old, value_old, limit_old) in zip(new_row, old_row, strict=True):
                assert stat == stat_old and _same(limit, limit_old)
                if stat.startswith("replay.") and max(value, value_old) <= limit:
                    continue
                rel = 0.0 if _same(value, value_old) else abs(value - value_old) / max(abs(value_old), 1e-300)
                worst[stat] = max(worst.get(stat, 0.0), rel)

        print(f"ensemble: MSPC, CUSUM, recipe + {', '.join(checks)}")
        print(f"{n} samples x {tags} tags = {n * tags} tag-readings; {len(findings)} Findings")
        print(f"{'path':38s} {'us/sample':>10s} {'us/tag-reading':>15s}")
        paths = [("push_block (whole batch)", block_best), ("push_sample (this code)", one_best)]
        if with_previous:
            paths.append((f"push_sample (previous code, {baseline_ref})", old_best))
        if old_block:
            paths.append((f"push_block (previous code, {baseline_ref})", old_block_best))
        for label, seconds in paths:
            print(f"{label:38s} {1e6 * seconds / n:10.1f} {1e6 * seconds / n / tags:15.2f}")
        print("identical: block == per-sample bit for bit (scores, episodes, Findings)")
        if with_previous:
            print("same episodes and Findings as the previous code at every sample (Finding numbers")
            print("to 1e-12); largest relative score difference to it per statistic (replay below")
            print("limit excluded):")
            print("  " + ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items())))
        head = f"{'detector alone':16s} {'previous us':>12s} {'per sample us':>14s} {'block us':>10s}"
        print(head + "  (per twin sample)")
        for name, (was, one_s, block_s) in costs.items():
            previous = f"{1e6 * was / n:12.1f}" if math.isfinite(was) else f"{'-':>12s}"
            print(f"{name:16s} {previous} {1e6 * one_s / n:14.1f} {1e6 * block_s / n:10.1f}")


if __name__ == "__main__":
    main()

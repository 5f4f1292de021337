"""Integrity-aware detection on the twin: stale values, replayed segments, impossible physics.

    .venv/bin/python -m benchmarks.detect_integrity                 # test seeds (report these)
    .venv/bin/python -m benchmarks.detect_integrity --validation    # validation seeds (tune on these)

Training batches (seeds 10000+), validation (20000+) and test (30000+) never overlap (the seeds of
benchmarks/detect_twin.py). Attacks: a replay of 40 h recorded 50 h earlier and a freeze (the last
value held) of 10 h, from 100 h, on temperature, pH, dissolved O2 and off-gas CO2, on the reporting
path (the process is the clean one); a 10 h level ramp (1000 L/h) and load-cell step (+2000 kg)
for the physics checks; and in the loop (``simulate_batches(tampers=...)``: the
controllers act on the false value) for the controlled variables. Every system runs in the same
``Engine`` with the persistence rule of ``DetectSettings``; an attack counts as detected when an
episode opens inside its window *and names the attacked tag first*. False alarms: episodes per
100 clean batch-hours over the clean test batches.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aseptic.campaign import Attack, Bias, Ramp, Replay, apply_attacks
from aseptic.config import DetectSettings, TwinSettings
from aseptic.detect import Detector, PhysicsDetector, ReplayDetector, StaleValueDetector, count_episodes
from aseptic.twin import simulate_batches
from benchmarks.detect_twin import (
    TEST_SEED,
    TRAIN_SEED,
    VALIDATION_SEED,
    first_in_window,
    run_batch,
    to_samples,
)

TAGS = ("temperature_k", "ph", "dissolved_o2_mg_per_l", "offgas_co2_pct")
IN_LOOP = (("freeze", "temperature_k"), ("freeze", "ph"), ("replay", "ph"))
START_H, REPLAY_H, FREEZE_H = 100.0, 40.0, 10.0


@dataclass
class Freeze:
    """Hold ``tag`` at its last value before ``start_h`` for ``duration_h`` (a stale reading)."""

    tag: str
    start_h: float
    duration_h: float
    techniques: tuple[str, ...] = ("T0815",)
    _held: float | None = None

    @property
    def end_h(self) -> float:
        return self.start_h + self.duration_h

    def is_active(self, time_h: float) -> bool:
        return self.start_h <= time_h < self.end_h

    def apply(self, time_h: float, values: Mapping[str, float]) -> dict[str, float]:
        out = dict(values)
        if not self.is_active(time_h):
            self._held = out.get(self.tag)
        elif self._held is not None:
            out[self.tag] = self._held
        return out


def make_attack(kind: str, tag: str) -> tuple[list[Attack], float]:
    """The attack and its window length."""
    if kind == "freeze":
        return [Freeze(tag, START_H, FREEZE_H)], FREEZE_H
    return [Replay(tag, START_H, REPLAY_H, record_from_h=START_H - REPLAY_H - 10.0)], REPLAY_H


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Integrity-aware detection on the twin (module docstring)")
    p.add_argument("--train-batches", type=int, default=20)
    p.add_argument("--test-batches", type=int, default=20)
    p.add_argument("--attack-batches", type=int, default=10)
    p.add_argument("--validation", action="store_true")
    args = p.parse_args(argv)
    cfg = DetectSettings()
    seed = VALIDATION_SEED if args.validation else TEST_SEED
    t0 = time.perf_counter()
    train = [to_samples(b) for b in simulate_batches(args.train_batches, TRAIN_SEED)]
    test = [to_samples(b) for b in simulate_batches(args.test_batches, seed)]
    stale, replay, physics = StaleValueDetector(), ReplayDetector(), PhysicsDetector()
    for d in (stale, replay, physics):
        d.fit(train)
    print(
        f"simulate + fit {time.perf_counter() - t0:.0f} s; stale watches {len(stale.tags)} tags "
        f"(excluded as legitimately holding: {', '.join(stale.excluded)})"
    )
    systems: dict[str, Callable[[], list[Detector]]] = {
        "stale": lambda: [stale],
        "replay": lambda: [replay],
        "physics": lambda: [physics],
        "all three": lambda: [stale, replay, physics],
    }
    rows: dict[str, list[str]] = {}
    hours = sum(len(s) for s in test) * TwinSettings().sample_time_h
    for build in systems.values():
        t1 = time.perf_counter()
        episodes = sum(count_episodes(run_batch(build(), s, [], cfg.persistence_samples)[1]) for s in test)
        per_sample_us = 1e6 * (time.perf_counter() - t1) / sum(len(s) for s in test)
        rows.setdefault("false-alarm episodes / 100 clean batch-h", []).append(
            f"{100 * episodes / hours:.2f}"
        )
        rows.setdefault("scoring time per sample (us)", []).append(f"{per_sample_us:.0f}")
    attacked = test[: args.attack_batches]
    cases: list[tuple[str, list[list[dict[str, float]]], Callable[[], list[Attack]], str, float]] = []
    for kind in ("replay", "freeze"):
        for tag in TAGS:
            window = make_attack(kind, tag)[1]
            cases.append((f"{kind} {tag}", attacked, lambda k=kind, t=tag: make_attack(k, t)[0], tag, window))
    # Physics: a level drifting at 1 % of its span per hour, a load-cell step of 2 % of span.
    cases.append(
        (
            "ramp volume_l 1000 L/h",
            attacked,
            lambda: [Ramp("volume_l", START_H, FREEZE_H, 1000.0)],
            "volume_l",
            FREEZE_H,
        )
    )
    cases.append(
        (
            "bias weight_kg +2000 kg",
            attacked,
            lambda: [Bias("weight_kg", START_H, FREEZE_H, 2000.0)],
            "weight_kg",
            FREEZE_H,
        )
    )
    for kind, tag in IN_LOOP:
        tampers = []
        for _ in range(args.attack_batches):
            attacks, window = make_attack(kind, tag)
            tampers.append(lambda t, m, a=attacks: apply_attacks(a, t, m))
        batches = [to_samples(b) for b in simulate_batches(args.attack_batches, seed, tampers=tampers)]
        cases.append((f"in loop: {kind} {tag}", batches, list, tag, window))
    for label, batches, attacks_for, tag, window in cases:
        for build in systems.values():
            hits, delays = 0, []
            for samples in batches:
                findings, _ = run_batch(build(), samples, attacks_for(), cfg.persistence_samples)
                hit = first_in_window(findings, START_H, START_H + window, tag)
                if hit is not None:
                    hits += 1
                    delays.append(hit.batch_time_h - START_H)
            ttd = f"{statistics.median(delays):.1f} h" if delays else "-"
            rows.setdefault(f"{label} ({window:g} h)", []).append(f"{hits}/{len(batches)} {ttd}")
    print(
        f"{args.train_batches} training batches, {args.test_batches} clean "
        f"{'validation' if args.validation else 'test'} batches ({hours:.0f} h), "
        f"first {args.attack_batches} attacked; detected/attacked, median time to detect"
    )
    print("\n| scenario | " + " | ".join(systems) + " |")
    print("|---|" + "---|" * len(systems))
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

"""Detection on the twin: bias, ramp and replay attacks vs batch MSPC + CUSUM and two baselines.

    .venv/bin/python -m benchmarks.detect_twin                 # test seeds (report these)
    .venv/bin/python -m benchmarks.detect_twin --validation    # validation seeds (tune on these)

Training batches (seeds 10000+), validation (20000+) and test (30000+) never overlap. Every batch
is simulated clean; attacks are applied to the *published* values (between the plant and the OPC UA
server: T0856 / T0832), so the process itself is the clean one and the same batch serves as clean
reference and attacked copy. Every system runs through the same ``Engine`` with the same
persistence rule; a Finding opens an alarm episode. An attack counts as detected when an episode
opens inside its window; the share of clean copies with an episode opening in the same window
("chance") is reported beside it, since such a detection may be a false alarm.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from aseptic.campaign import Attack, Bias, Ramp, Replay, apply_attacks
from aseptic.clock import SimClock
from aseptic.config import DetectSettings, TwinSettings
from aseptic.detect import (
    BatchModel,
    Detector,
    Engine,
    Finding,
    MspcDetector,
    RecipeDetector,
    ResidualCusum,
    ThreeSigmaDetector,
    count_episodes,
    fit_model,
)
from aseptic.twin import BatchResult, simulate_batches

Sample = dict[str, float]
TRAIN_SEED, VALIDATION_SEED, TEST_SEED = 10_000, 20_000, 30_000

# Magnitudes fixed before any test run (size 1): a small fraction of each tag's operating band.
# ``--sizes`` multiplies them (default: 1 and 3). Replay has no size.
ATTACK_TAGS: dict[str, tuple[float, float]] = {  # tag -> (bias, ramp slope per hour)
    "temperature_k": (0.2, 0.01),
    "ph": (0.05, 0.002),
    "dissolved_o2_mg_per_l": (1.5, 0.05),
    "offgas_co2_pct": (0.15, 0.005),
}


@dataclass
class Outcome:
    runs: int = 0
    detected: int = 0
    attributed: int = 0  # the first Finding's top tag is the attacked tag
    chance: int = 0
    delays_h: list[float] = field(default_factory=list)

    def cell(self) -> str:
        ttd = f"{statistics.median(self.delays_h):.1f} h" if self.delays_h else "-"
        return f"{self.detected}/{self.runs}, {ttd}, tag {self.attributed}, chance {self.chance}"


def to_samples(batch: BatchResult) -> list[Sample]:
    names = list(batch.tags)
    columns = [batch.tags[n] for n in names]
    return [{n: float(c[i]) for n, c in zip(names, columns, strict=True)} for i in range(batch.time_h.size)]


def make_attacks(tag: str, kind: str, start_h: float, duration_h: float, size: float) -> list[Attack]:
    bias, slope = ATTACK_TAGS[tag]
    if kind == "bias":
        return [Bias(tag, start_h, duration_h, size * bias)]
    if kind == "ramp":
        return [Ramp(tag, start_h, duration_h, size * slope)]
    return [Replay(tag, start_h, duration_h, record_from_h=start_h - duration_h - 10.0)]


def run_batch(
    detectors: Sequence[Detector], samples: list[Sample], attacks: list[Attack], persistence: int
) -> tuple[list[Finding], list[bool]]:
    """Findings of one batch and its per-sample union of confirmed alarms."""
    findings: list[Finding] = []
    clock = SimClock(datetime(2026, 1, 1, tzinfo=UTC))
    engine = Engine(detectors, findings.append, clock=clock, persistence=persistence)
    engine.start_batch("b")
    flags = []
    for sample in samples:
        shown = apply_attacks(attacks, sample["batch_time_h"], sample) if attacks else sample
        flags.append(engine.push_sample(shown).alarmed)
    return findings, flags


def first_in_window(findings: list[Finding], start_h: float, end_h: float) -> Finding | None:
    inside = [f for f in findings if start_h <= f.batch_time_h <= end_h]
    return min(inside, key=lambda f: f.batch_time_h) if inside else None


def scenarios(sizes: Sequence[float]) -> list[tuple[str, str, float]]:
    out = [(tag, kind, size) for tag in ATTACK_TAGS for kind in ("bias", "ramp") for size in sizes]
    return out + [(tag, "replay", 1.0) for tag in ATTACK_TAGS]


def evaluate(
    build: Callable[[], list[Detector]],
    test: list[list[Sample]],
    args: argparse.Namespace,
    cfg: DetectSettings,
) -> dict[str, object]:
    start, end = args.start_h, args.start_h + args.duration_h
    hours = episodes = 0.0
    clean: list[list[Finding]] = []
    for samples in test:
        findings, flags = run_batch(build(), samples, [], cfg.persistence_samples)
        hours += len(samples) * TwinSettings().sample_time_h
        episodes += count_episodes(flags)
        clean.append(findings)
    outcomes: dict[str, Outcome] = {}
    for tag, kind, size in scenarios(args.sizes):
        out = Outcome()
        for i, samples in enumerate(test[: args.attack_batches]):
            attacks = make_attacks(tag, kind, start, args.duration_h, size)
            findings, _ = run_batch(build(), samples, attacks, cfg.persistence_samples)
            hit = first_in_window(findings, start, end)
            out.runs += 1
            out.chance += first_in_window(clean[i], start, end) is not None
            if hit is not None:
                out.detected += 1
                out.attributed += bool(hit.tags) and hit.tags[0] == tag
                out.delays_h.append(round(hit.batch_time_h - start, 3))
        outcomes[label(tag, kind, size)] = out
    return {"fa_per_100h": 100.0 * episodes / hours, "clean_hours": hours, "attacks": outcomes}


def label(tag: str, kind: str, size: float) -> str:
    if kind == "replay":
        return f"replay {tag} (from 50 h earlier)"
    bias, slope = ATTACK_TAGS[tag]
    return f"{kind} {tag} {size * bias:g}" if kind == "bias" else f"ramp {tag} {size * slope:g}/h"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Detection on the twin (see module docstring)")
    p.add_argument("--train-batches", type=int, default=20)
    p.add_argument("--test-batches", type=int, default=20, help="clean batches for the false-alarm rate")
    p.add_argument("--attack-batches", type=int, default=10, help="first N test batches are also attacked")
    p.add_argument("--sizes", type=float, nargs="+", default=[1.0, 3.0], help="attack size multipliers")
    p.add_argument("--validation", action="store_true", help="use validation seeds (for tuning)")
    p.add_argument("--start-h", type=float, default=100.0)
    p.add_argument("--duration-h", type=float, default=40.0)
    p.add_argument("--json", type=str, default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    cfg = DetectSettings()
    t0 = time.perf_counter()
    train = [to_samples(b) for b in simulate_batches(args.train_batches, TRAIN_SEED)]
    test_seed = VALIDATION_SEED if args.validation else TEST_SEED
    test = [to_samples(b) for b in simulate_batches(args.test_batches, test_seed)]
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = fit_model(train, cfg, seed=0)
    static = fit_model(train, cfg, aligned=False, seed=0)
    three_sigma = ThreeSigmaDetector()
    three_sigma.fit(train)
    t_fit = time.perf_counter() - t0
    systems: dict[str, Callable[[], list[Detector]]] = {
        "batch MSPC + CUSUM + recipe": lambda: [
            MspcDetector(model),
            ResidualCusum(model),
            RecipeDetector(model),
        ],
        "baseline: static PCA": lambda: [MspcDetector(static)],
        "baseline: static 3-sigma": lambda: [three_sigma],
    }
    t0 = time.perf_counter()
    results = {name: evaluate(build, test, args, cfg) for name, build in systems.items()}
    t_run = time.perf_counter() - t0
    report(results, args, model, (t_sim, t_fit, t_run))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, default=asdict, indent=1)


def report(
    results: dict[str, dict[str, object]],
    args: argparse.Namespace,
    model: BatchModel,
    times: tuple[float, ...],
) -> None:
    seeds = "validation" if args.validation else "test"
    print(
        f"{args.train_batches} training batches (seeds {TRAIN_SEED}+), {args.test_batches} clean {seeds} "
        f"batches, first {args.attack_batches} attacked per scenario; "
        f"window {args.start_h:g} h + {args.duration_h:g} h"
    )
    print(f"simulate {times[0]:.0f} s, fit {times[1]:.0f} s, score {times[2]:.0f} s")
    print(f"model: {model_summary(model)}")
    names = list(results)
    print("\n| scenario | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    print(
        "| false-alarm episodes / 100 clean batch-h | "
        + " | ".join(f"{results[n]['fa_per_100h']:.2f}" for n in names)
        + " |"
    )
    first = results[names[0]]["attacks"]
    assert isinstance(first, dict)
    for scenario in first:
        cells = []
        for n in names:
            attacks = results[n]["attacks"]
            assert isinstance(attacks, dict)
            cells.append(attacks[scenario].cell())
        print(f"| {scenario} | " + " | ".join(cells) + " |")


def model_summary(m: BatchModel) -> str:
    return (
        f"{len(m.tags)} tags + {len(m.recipe.tags)} recipe tags, "
        f"{m.pca.components} PCs ({m.pca.explained:.0%}), excluded upset batches {m.excluded_batches}, "
        f"T2 lim {m.t2_limit:.1f} (F: {m.t2_limit_theory:.1f}), SPE lim {m.spe_limit:.1f} "
        f"(JM: {m.spe_limit_theory:.1f}), CUSUM k {m.cusum_k:g}, h {min(m.cusum_h):.1f}..{max(m.cusum_h):.1f}"
    )


if __name__ == "__main__":
    main()

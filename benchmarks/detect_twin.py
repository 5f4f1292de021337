"""Detection on the twin: bias, ramp and replay attacks vs batch MSPC + CUSUM and two baselines.

    .venv/bin/python -m benchmarks.detect_twin                 # test seeds (report these)
    .venv/bin/python -m benchmarks.detect_twin --validation    # validation seeds (tune on these)

Training batches (seeds 10000+), validation (20000+) and test (30000+) never overlap. Reporting-path
attacks are applied to the *published* values of clean batches (between the plant and the OPC UA
server: T0856 / T0832), so the process is the clean one and the same batch serves as clean
reference and attacked copy. In-loop attacks ("in loop:") re-simulate the same seeds with the
primitive at the instrument (``simulate_batches(tampers=...)``): the controllers act on the false
value and the true process moves. Every system runs through the same ``Engine`` with the same
persistence rule; a Finding opens an alarm episode. An attack counts as detected when an episode
opens inside its window *and names the attacked tag first*; the same count on the clean copy of
each batch ("chance", in brackets) is reported beside it, and so are Findings of any kind.
"""

from __future__ import annotations

import argparse
import functools
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


# Controlled variables: an attack at their instrument also moves the true process.
IN_LOOP_TAGS = ("temperature_k", "ph")


@dataclass
class Outcome:
    runs: int = 0
    named: int = 0  # a Finding in the window names the attacked tag first
    any: int = 0  # any Finding opens in the window
    chance_named: int = 0  # ... on the clean copy of the same batch
    chance_any: int = 0
    delays_h: list[float] = field(default_factory=list)  # to the first naming Finding

    def cell(self) -> str:
        if self.delays_h:
            ttd = f"{statistics.median(self.delays_h):.1f} h"
            if len(self.delays_h) >= 2:
                ttd += f" (max {max(self.delays_h):.1f})"
        else:
            ttd = "-"
        return f"**{self.named}**/{self.runs} {ttd} [{self.chance_named}]; any {self.any} [{self.chance_any}]"


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


def first_in_window(
    findings: list[Finding], start_h: float, end_h: float, tag: str | None = None
) -> Finding | None:
    """The first Finding opening in [start_h, end_h] (naming ``tag`` first, if given)."""
    inside = [
        f for f in findings if start_h <= f.batch_time_h <= end_h and (tag is None or f.tags[:1] == (tag,))
    ]
    return min(inside, key=lambda f: f.batch_time_h) if inside else None


def scenarios(
    sizes: Sequence[float], tags: Sequence[str] = tuple(ATTACK_TAGS)
) -> list[tuple[str, str, float]]:
    out = [(tag, kind, size) for tag in tags for kind in ("bias", "ramp") for size in sizes]
    return out + [(tag, "replay", 1.0) for tag in tags]


def clean_pass(
    build: Callable[[], list[Detector]], test: list[list[Sample]], cfg: DetectSettings
) -> tuple[dict[str, float], list[list[Finding]]]:
    """False-alarm episodes per 100 clean batch-hours and the clean Findings of every test batch."""
    t0 = time.perf_counter()
    hours = episodes = scored = 0.0
    clean: list[list[Finding]] = []
    for samples in test:
        findings, flags = run_batch(build(), samples, [], cfg.persistence_samples)
        hours += len(samples) * TwinSettings().sample_time_h
        scored += len(samples)
        episodes += count_episodes(flags)
        clean.append(findings)
    stats = {
        "fa_per_100h": 100.0 * episodes / hours,
        "clean_hours": hours,
        "samples_per_s": scored / (time.perf_counter() - t0),
    }
    return stats, clean


def score_scenario(
    build: Callable[[], list[Detector]],
    batches: list[list[Sample]],
    attacks_for: Callable[[], list[Attack]],
    tag: str,
    clean: list[list[Finding]],
    args: argparse.Namespace,
    cfg: DetectSettings,
) -> Outcome:
    """Detections of one scenario; ``attacks_for()`` is applied on the reporting path (may be [])."""
    start, end = args.start_h, args.start_h + args.duration_h
    out = Outcome()
    for i, samples in enumerate(batches):
        findings, _ = run_batch(build(), samples, attacks_for(), cfg.persistence_samples)
        out.runs += 1
        out.any += first_in_window(findings, start, end) is not None
        out.chance_any += first_in_window(clean[i], start, end) is not None
        out.chance_named += first_in_window(clean[i], start, end, tag) is not None
        hit = first_in_window(findings, start, end, tag)
        if hit is not None:
            out.named += 1
            out.delays_h.append(round(hit.batch_time_h - start, 3))
    return out


def in_loop_batches(
    tag: str, kind: str, size: float, seed: int, args: argparse.Namespace
) -> list[list[Sample]]:
    """The first attacked test batches re-simulated with the attack at the instrument (controllers see it)."""
    tampers = []
    for _ in range(args.attack_batches):
        attacks = make_attacks(tag, kind, args.start_h, args.duration_h, size)
        tampers.append(lambda t, m, a=attacks: apply_attacks(a, t, m))
    return [to_samples(b) for b in simulate_batches(args.attack_batches, seed, tampers=tampers)]


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
    results: dict[str, dict[str, object]] = {}
    clean: dict[str, list[list[Finding]]] = {}
    for name, build in systems.items():
        stats, clean[name] = clean_pass(build, test, cfg)
        results[name] = {**stats, "attacks": {}}
    attacked = test[: args.attack_batches]
    for tag, kind, size in scenarios(args.sizes):
        for name, build in systems.items():
            outcome = score_scenario(
                build,
                attacked,
                functools.partial(make_attacks, tag, kind, args.start_h, args.duration_h, size),
                tag,
                clean[name],
                args,
                cfg,
            )
            results[name]["attacks"][label(tag, kind, size)] = outcome  # type: ignore[index]
    for tag, kind, size in scenarios(args.sizes, IN_LOOP_TAGS):
        batches = in_loop_batches(tag, kind, size, test_seed, args)
        for name, build in systems.items():
            outcome = score_scenario(build, batches, list, tag, clean[name], args, cfg)
            results[name]["attacks"]["in loop: " + label(tag, kind, size)] = outcome  # type: ignore[index]
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
    print(
        "| samples scored / s (engine, all detectors) | "
        + " | ".join(f"{results[n]['samples_per_s']:.0f}" for n in names)
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

"""The campaign runner: scenario files executed on twin batches and scored against the detectors.

Each executable scenario runs on ``batches`` fresh batches (seeds ``CAMPAIGN_SEED + i``, distinct
from the training seeds 10000+ and the twin bench's test seeds 30000+); batch ``i`` of every
scenario is compared with the clean batch of the same seed (same duration). The detector set,
its training, the per-batch scoring and the worker pool are the twin bench's
(``aseptic.bench._twin``: ``fit_detectors``, ``score_samples``, ``init_worker``).

A step runs when its primitive has a twin implementation (``executable``): ``sensor_*`` on the
reporting path (``path: view``, the published samples are falsified) or at the instrument
(``path: loop``, ``InLoopPlant``), ``setpoint_tamper`` in the loop. A scenario with any other step
is reported in ``not_executed`` with the reason, never scored.

Scoring (docs/campaign.md, "Runner"): a batch is detected when a Finding of an expected detector
family (``FAMILY_STATISTICS``) opens within ``within_h`` of the first malicious step; the
scenario is detected when >= 95 % of its batches are. Expected families the twin pipeline does not
run (gateway, access analytics, ...) are listed as not evaluable; with none left the detection
fields are null.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

from aseptic.campaign._loop import InLoopPlant
from aseptic.campaign._primitives import Attack, Bias, Ramp, Replay, apply_attacks
from aseptic.campaign._scenario import Scenario, Step
from aseptic.campaign._shapes import Freeze, Geometric, SetpointChange, Surge
from aseptic.errors import ConfigError
from aseptic.twin import TAGS_BY_NAME, Plant

__all__ = [
    "CAMPAIGN_SEED",
    "DETECTION_QUORUM",
    "FAMILY_STATISTICS",
    "not_executable_reason",
    "run_campaign",
]

CAMPAIGN_SEED = 50_000
DETECTION_QUORUM = 0.95
SAMPLE_H = 0.2
# Expected detector family -> the head of the engine's statistic names ("mspc.t2" -> "mspc").
# None: the family is not part of the twin pipeline (platform detectors), not evaluable here.
FAMILY_STATISTICS: Mapping[str, frozenset[str] | None] = {
    "mspc": frozenset({"mspc"}),
    "cusum": frozenset({"cusum"}),
    "recipe": frozenset({"recipe"}),
    "stale": frozenset({"stale"}),
    "replay": frozenset({"replay"}),
    "physics": frozenset({"physics"}),
    "twin_residual": frozenset({"twin"}),
    "ensemble": frozenset({"mspc", "cusum", "recipe", "stale", "replay", "physics", "twin"}),
    "access_analytics": None,
    "attestation": None,
    "gateway": None,
    "ledger_verify": None,
    "model_guard": None,
    "provenance": None,
    "ransomware": None,
}
_SENSOR = ("sensor_bias", "sensor_ramp", "sensor_surge", "sensor_geometric", "sensor_replay", "sensor_stale")
# Controlled variables and their specification (the validated range of their setpoint).
_SPEC = {"temperature_k": "temperature_sp_k", "ph": "ph_sp", "paa_mg_per_l": "paa_sp_mg_per_l"}
# Surge sizes as multiples of the tag's noise (1 % of its range for noiseless tags).
SURGE_PEAK_SIGMA, SURGE_SETTLE_SIGMA, SURGE_H = 20.0, 3.0, 1.0
TITRE_REJECT_FRACTION = 0.05
Progress = Callable[[int, int], None]


def not_executable_reason(step: Step) -> str | None:
    """Why ``step`` cannot run on the twin yet (None when it can)."""
    if step.primitive in _SENSOR or step.primitive == "setpoint_tamper":
        return None
    if step.primitive == "controller_tuning":
        return "controller_tuning: the twin has no API to change controller gains yet"
    return f"{step.primitive}: platform/model primitive with no twin implementation yet"


@cache
def _recipe_setpoints() -> dict[str, float]:
    return Plant(0).setpoints()


def _sigma(tag: str) -> float:
    spec = TAGS_BY_NAME[tag]
    return spec.noise_sd if spec.noise_sd > 0 else 0.01 * (spec.high - spec.low)


def _attack(step: Step, duration_h: float) -> Attack:
    p = step.params
    window = step.duration_h if step.duration_h is not None else duration_h - step.at_h
    tag, start = str(p["tag"]), step.at_h
    name = step.primitive
    if name == "sensor_bias":
        return Bias(tag, start, window, float(p["offset"]))
    if name == "sensor_ramp":
        return Ramp(tag, start, window, float(p["rate_per_h"]))
    if name == "sensor_surge":
        sign = 1.0 if p["direction"] == "up" else -1.0
        s = _sigma(tag)
        return Surge(tag, start, window, sign * SURGE_PEAK_SIGMA * s, sign * SURGE_SETTLE_SIGMA * s, SURGE_H)
    if name == "sensor_geometric":
        return Geometric(tag, start, window, float(p["beta"]), float(p["alpha"]))
    if name == "sensor_replay":
        # Replay records a window and plays it back: a lag shorter than the window becomes the window.
        lag = max(float(p["lag_h"]), window)
        return Replay(tag, start, window, record_from_h=max(0.0, start - lag))
    if name == "sensor_stale":
        return Freeze(tag, start, window)
    offset = float(p["value"]) - _recipe_setpoints()[tag]
    return SetpointChange(tag, start, window, offset)


@dataclass(frozen=True)
class _Task:
    key: str  # scenario id, or "" for the clean batch
    seed: int
    duration_h: float
    loop: tuple[Attack, ...] = ()
    view: tuple[Attack, ...] = ()


def _build(scenario: Scenario, seed: int) -> _Task:
    duration = scenario.preconditions.batch_duration_h
    loop: list[Attack] = []
    view: list[Attack] = []
    for step in scenario.steps:
        attack = _attack(step, duration)
        on_loop = step.primitive == "setpoint_tamper" or step.params.get("path", "view") == "loop"
        (loop if on_loop else view).append(attack)
    return _Task(scenario.id, seed, duration, tuple(loop), tuple(view))


def _run(task: _Task) -> dict[str, Any]:
    from aseptic.bench._twin import PAA_CONTROL, score_samples

    plant = InLoopPlant(task.seed, task.loop, duration_h=task.duration_h, paa_control=PAA_CONTROL)
    spec = {tag: TAGS_BY_NAME[sp].validated for tag, sp in _SPEC.items()}
    samples: list[dict[str, float]] = []
    out_of_spec = 0
    while not plant.finished:
        values = plant.step()
        truth = plant.plant.true_state()
        if any(r is not None and not (r[0] <= truth[tag] <= r[1]) for tag, r in spec.items()):
            out_of_spec += 1
        samples.append(apply_attacks(task.view, values["batch_time_h"], values) if task.view else values)
    truth = plant.plant.true_state()
    findings, episodes, n = score_samples(samples)
    return {
        "key": task.key,
        "seed": task.seed,
        "hours": n * SAMPLE_H,
        "episodes": len(episodes["ensemble"]),
        "findings": [(f.batch_time_h, f.detector) for f in findings],
        "titre_g_per_l": truth["penicillin_g_per_l"],
        "harvest_kg": truth["penicillin_g_per_l"] * truth["volume_l"] / 1000.0,
        "minutes_out_of_spec": out_of_spec * SAMPLE_H * 60.0,
    }


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 2)


def _heads(families: Sequence[str]) -> frozenset[str]:
    heads: set[str] = set()
    for family in families:
        heads |= FAMILY_STATISTICS.get(family) or frozenset()
    return frozenset(heads)


def _score(
    scenario: Scenario, runs: list[dict[str, Any]], clean: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    families = [e.detector for e in scenario.expected]
    evaluable = [f for f in families if FAMILY_STATISTICS.get(f) is not None]
    heads = _heads(evaluable)
    within = {e.detector: e.within_h for e in scenario.expected}
    first_h = min(s.at_h for s in scenario.steps)
    horizon = max((within[f] for f in evaluable), default=2.0)
    detected_batches = 0
    fired: dict[str, int] = {}
    step_ttd: list[list[float]] = [[] for _ in scenario.steps]
    for run in runs:
        hits = [(t, d) for t, d in run["findings"] if d.split(".", 1)[0] in heads]
        if any(first_h <= t <= first_h + horizon for t, _ in hits):
            detected_batches += 1
        for i, step in enumerate(scenario.steps):
            after = sorted((t, d) for t, d in hits if t >= step.at_h)
            if after:
                step_ttd[i].append(after[0][0] - step.at_h)
                if i == 0:
                    fired[after[0][1]] = fired.get(after[0][1], 0) + 1
    ttd0 = step_ttd[0]
    rate = detected_batches / len(runs) if runs else 0.0
    matched = [clean[r["seed"]] for r in runs]
    titre = [c["titre_g_per_l"] - r["titre_g_per_l"] for r, c in zip(runs, matched, strict=True)]
    kg = [c["harvest_kg"] - r["harvest_kg"] for r, c in zip(runs, matched, strict=True)]
    rejects = sum(
        1
        for r, c in zip(runs, matched, strict=True)
        if r["minutes_out_of_spec"] > c["minutes_out_of_spec"]
        or c["titre_g_per_l"] - r["titre_g_per_l"] > TITRE_REJECT_FRACTION * c["titre_g_per_l"]
    )
    clean_h = sum(c["hours"] for c in matched)
    evaluated = bool(evaluable)
    return {
        "id": scenario.id,
        "name": scenario.name,
        "techniques": list(scenario.techniques),
        "batches": len(runs),
        "expected": families,
        "not_evaluable": [f for f in families if f not in evaluable],
        "detected": (rate >= DETECTION_QUORUM) if evaluated else None,
        "detection_rate": round(rate, 3) if evaluated else None,
        "median_ttd_h": (round(statistics.median(ttd0), 2) if ttd0 else None) if evaluated else None,
        "p95_ttd_h": _quantile(ttd0, 0.95) if evaluated else None,
        "batch_ttd_h": [round(t, 2) for t in ttd0] if evaluated else [],
        "steps": [
            {
                "primitive": step.primitive,
                "at_h": step.at_h,
                "detected_batches": len(step_ttd[i]),
                "median_ttd_h": round(statistics.median(step_ttd[i]), 2) if step_ttd[i] else None,
                "p95_ttd_h": _quantile(step_ttd[i], 0.95),
            }
            for i, step in enumerate(scenario.steps)
        ],
        "fired": dict(sorted(fired.items())),
        "false_alarms_per_100h": round(100.0 * sum(c["episodes"] for c in matched) / clean_h, 3)
        if clean_h
        else None,
        "impact": {
            "titre_loss_g_per_l": round(statistics.mean(titre), 4) if titre else None,
            "harvest_kg_loss": round(statistics.mean(kg), 3) if kg else None,
            "minutes_out_of_spec": round(statistics.mean(r["minutes_out_of_spec"] for r in runs), 1)
            if runs
            else None,
            "clean_minutes_out_of_spec": round(statistics.mean(c["minutes_out_of_spec"] for c in matched), 1)
            if matched
            else None,
            "qa_reject_batches": rejects,
            "qa_reject": bool(runs) and rejects * 2 > len(runs),
        },
    }


def run_campaign(
    scenarios: Sequence[Scenario],
    *,
    batches: int = 4,
    train_batches: int = 10,
    workers: int = 2,
    train_duration_h: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Execute ``scenarios`` on ``batches`` batches each and score them (the campaign.json content).

    The detectors are fitted on ``train_batches`` clean batches of ``train_duration_h`` hours
    (default: the full recipe), as in ``aseptic bench twin``.

    Raises:
        ConfigError: ``batches`` < 1, ``train_batches`` < 3, ``workers`` < 1 or no scenario.
    """
    from aseptic.bench._twin import TRAIN_SEED, fit_detectors, init_worker

    if batches < 1 or train_batches < 3 or workers < 1 or not scenarios:
        raise ConfigError(
            "campaign run needs at least one scenario, batches >= 1, train batches >= 3 and workers >= 1 "
            f"(got {len(scenarios)} scenarios, {batches}, {train_batches}, {workers})"
        )
    not_executed = []
    runnable = []
    for scenario in scenarios:
        reasons = [r for r in (not_executable_reason(s) for s in scenario.steps) if r]
        if reasons:
            not_executed.append(
                {"id": scenario.id, "techniques": list(scenario.techniques), "reasons": reasons}
            )
        else:
            runnable.append(scenario)
    t0 = time.perf_counter()
    detectors = fit_detectors(train_batches, duration_h=train_duration_h) if runnable else []
    fit_s = time.perf_counter() - t0
    seeds = [CAMPAIGN_SEED + i for i in range(batches)]
    durations = sorted({s.preconditions.batch_duration_h for s in runnable})
    tasks = [_Task("", seed, d) for d in durations for seed in seeds]
    tasks += [_build(s, seed) for s in runnable for seed in seeds]
    results: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    if tasks:
        with ProcessPoolExecutor(max_workers=workers, initializer=init_worker, initargs=(detectors,)) as pool:
            for done, result in enumerate(pool.map(_run, tasks, chunksize=1), start=1):
                results.append(result)
                if progress is not None:
                    progress(done, len(tasks))
    score_s = time.perf_counter() - t1
    clean_by = {(t.duration_h, r["seed"]): r for t, r in zip(tasks, results, strict=True) if not t.key}
    rows = []
    for scenario in runnable:
        d = scenario.preconditions.batch_duration_h
        runs = [r for r in results if r["key"] == scenario.id]
        rows.append(_score(scenario, runs, {seed: clean_by[(d, seed)] for seed in seeds}))
    executed = sorted({t for s in runnable for t in s.techniques})
    detected = sorted({t for row in rows if row["detected"] for t in row["techniques"]})
    attacked = sum(1 for t in tasks if t.key)
    return {
        "protocol": {
            "train_seeds": [TRAIN_SEED, TRAIN_SEED + train_batches - 1],
            "seeds": [seeds[0], seeds[-1]],
            "batches_per_scenario": batches,
            "detection_quorum": DETECTION_QUORUM,
        },
        "scenarios": rows,
        "not_executed": not_executed,
        "coverage": {
            "techniques_executed": executed,
            "techniques_detected": detected,
            "techniques_not_executed": sorted(
                {t for n in not_executed for t in n["techniques"]} - set(executed)
            ),
        },
        "timing": {
            "fit_s": round(fit_s, 1),
            "score_s": round(score_s, 1),
            "workers": workers,
            "attacked_batches": attacked,
            "clean_batches": len(tasks) - attacked,
            "attacked_batches_per_min": round(60.0 * attacked / score_s, 1) if score_s > 0 else None,
        },
    }

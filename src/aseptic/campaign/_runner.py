"""The campaign runner: scenario files executed on twin batches and on the platform, and scored.

Each scenario runs on ``batches`` fresh batches (seeds ``CAMPAIGN_SEED + i``, distinct from the
training seeds 10000+, the guard's 1000+ and the twin bench's test seeds 30000+); batch ``i`` of
every scenario is compared with the clean batch of the same seed, duration and PAA mode, which is
simulated beside it (``_worker``: one task per seed and mode, every scenario's batch of that seed
in one lock-step ``PlantFleet``, scored by the streaming engine from the first sample that differs
from the clean batch). The process detector set and its training are the twin bench's
(``aseptic.bench.fit_detectors``); soft-sensor scenarios run with the model guard
(``_model.fit_guard_kit``); platform primitives run against the real components (``_platform``).

Scoring (docs/campaign.md, "Runner"): a batch is detected when a Finding of an expected detector
family (``FAMILY_STATISTICS``) opens within ``within_h`` of the first malicious step; the
scenario is detected when >= 95 % of its batches are. Expected families nothing in the campaign
runs (the write gateway) are listed as not evaluable; with none left the detection fields are null.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aseptic.campaign._plan import MODEL_PRIMITIVES, SAMPLE_H, Group, watch_keys
from aseptic.campaign._scenario import Scenario, Step
from aseptic.errors import ConfigError
from aseptic.twin import CONTROL_LOOPS, PaaControl

__all__ = [
    "CAMPAIGN_SEED",
    "DETECTION_QUORUM",
    "FAMILY_STATISTICS",
    "not_executable_reason",
    "run_campaign",
]

CAMPAIGN_SEED = 50_000
DETECTION_QUORUM = 0.95
# Expected detector family -> the heads of the statistic names that count for it ("mspc.t2" ->
# "mspc", "attestation.AT-202" -> "attestation"). None would mean nothing in the campaign runs it.
_PROCESS = frozenset({"mspc", "cusum", "recipe", "stale", "replay", "physics", "twin", "control"})
FAMILY_STATISTICS: Mapping[str, frozenset[str] | None] = {
    "mspc": frozenset({"mspc"}),
    "cusum": frozenset({"cusum"}),
    "recipe": frozenset({"recipe"}),
    "stale": frozenset({"stale"}),
    "replay": frozenset({"replay"}),
    "physics": frozenset({"physics"}),
    "twin_residual": frozenset({"twin"}),
    "control_loop": frozenset({"control"}),
    "ensemble": _PROCESS,
    "access_analytics": frozenset({"access_analytics"}),
    "alarm_audit": frozenset({"alarm_audit"}),
    "attestation": frozenset({"attestation"}),
    "gateway": frozenset({"gateway"}),
    "ledger_verify": frozenset({"ledger_verify"}),
    "model_guard": frozenset({"model_guard"}),
    "provenance": frozenset({"provenance"}),
    "ransomware": frozenset({"ransomware"}),
}
TITRE_REJECT_FRACTION = 0.05
Progress = Callable[[int, int], None]


def not_executable_reason(step: Step) -> str | None:
    """Why ``step`` cannot run yet (None when it can)."""
    if step.primitive == "controller_tuning" and step.params.get("loop") not in CONTROL_LOOPS:
        return (
            f"controller_tuning: the twin has no {step.params.get('loop')!r} controller "
            f"(its loops: {', '.join(CONTROL_LOOPS)})"
        )
    return None


def _mode(scenario: Scenario) -> PaaControl:
    return "softsensor" if any(s.primitive in MODEL_PRIMITIVES for s in scenario.steps) else "true"


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


def _clean_alarms(scenario: Scenario, clean: Mapping[str, Any], heads: frozenset[str]) -> int:
    """False-alarm episodes on the matched clean batch: the process ensemble's alarm episodes when
    the scenario expects a process detector, plus every Finding of the scenario's own platform
    monitors on the clean batch."""
    process = clean["episodes"] if clean["mode"] == "true" and heads & _PROCESS else 0
    platform = sum(1 for _, d in clean["findings"] if d.split(".", 1)[0] in heads - _PROCESS)
    return int(process + platform)


def _watched(scenario: Scenario, family: str) -> bool:
    """Whether anything the campaign runs for ``scenario``'s batches can raise ``family``'s Findings."""
    heads = FAMILY_STATISTICS.get(family)
    if heads is None:
        return False
    if heads <= _PROCESS:
        return _mode(scenario) == "true"
    keys = watch_keys(scenario)
    return {
        "model_guard": _mode(scenario) == "softsensor",
        "provenance": _mode(scenario) == "softsensor",
        "attestation": "firmware" in keys,
        "access_analytics": any(k.startswith("access:") for k in keys),
        "ledger_verify": "custody" in keys,
        "ransomware": "custody" in keys,
        "gateway": "gateway" in keys,
        "alarm_audit": any(st.primitive == "alarm_suppress" for st in scenario.steps),
    }.get(family, False)


def _score(
    scenario: Scenario, runs: list[dict[str, Any]], clean: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    families = [e.detector for e in scenario.expected]
    evaluable = [f for f in families if _watched(scenario, f)]
    heads = _heads(evaluable)
    within = {e.detector: e.within_h for e in scenario.expected}
    first_h = min(s.at_h for s in scenario.steps)
    horizon = max((within[f] for f in evaluable), default=2.0)
    detected_batches = 0
    fired: dict[str, int] = {}
    step_ttd: list[list[float]] = [[] for _ in scenario.steps]
    for run in runs:
        hits = [(t, d) for t, d in run["findings"] if d.split(".", 1)[0] in heads]
        if any(first_h <= t <= first_h + horizon + 1e-9 for t, _ in hits):
            detected_batches += 1
        for i, step in enumerate(scenario.steps):
            after = sorted((t, d) for t, d in hits if t >= step.at_h - 1e-9)
            if after:
                step_ttd[i].append(max(0.0, after[0][0] - step.at_h))
                if i == 0:  # every statistic that opened a Finding at the first detection
                    for name in sorted({d for t, d in after if t == after[0][0]}):
                        fired[name] = fired.get(name, 0) + 1
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
        or r["platform_impact"].get("records_lost", 0) > 0
    )
    clean_h = sum(c["hours"] for c in matched)
    evaluated = bool(evaluable)
    platform: dict[str, Any] = {}
    for run in runs:
        for name, value in run["platform_impact"].items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                platform.setdefault(name, []).append(value)
            else:
                platform[name] = platform.get(name, 0) + value
    for name, value in list(platform.items()):
        if isinstance(value, int | float) and not isinstance(value, bool) and runs:
            platform[name] = round(value / len(runs), 2)
    return {
        "id": scenario.id,
        "name": scenario.name,
        "techniques": list(scenario.techniques),
        "batches": len(runs),
        "paa_control": _mode(scenario),
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
        "false_alarms_per_100h": round(
            100.0 * sum(_clean_alarms(scenario, c, heads) for c in matched) / clean_h, 3
        )
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
            **({"platform": platform} if platform else {}),
        },
    }


def _groups(runnable: Sequence[Scenario], seeds: Sequence[int]) -> list[Group]:
    by_kind: dict[tuple[PaaControl, float], list[Scenario]] = {}
    for scenario in runnable:
        by_kind.setdefault((_mode(scenario), scenario.preconditions.batch_duration_h), []).append(scenario)
    groups = []
    for (mode, duration), members in sorted(by_kind.items()):
        watches = sorted({k for s in members for k in watch_keys(s)})
        if any(st.primitive == "alarm_suppress" for s in members for st in s.steps):
            watches.append("alarm")
        for seed in seeds:
            groups.append(Group(mode, duration, seed, tuple(members), tuple(watches)))
    return groups


def run_campaign(
    scenarios: Sequence[Scenario],
    *,
    batches: int = 4,
    train_batches: int = 10,
    workers: int = 2,
    out: Path | None = None,
    train_duration_h: float | None = None,
    progress: Progress | None = None,
    scoring: str = "block",
    reuse: bool = True,
) -> dict[str, Any]:
    """Execute ``scenarios`` on ``batches`` batches each and score them; the campaign.json content.

    The process detectors are fitted on ``train_batches`` clean batches of ``train_duration_h``
    hours (default: the full recipe), as in ``aseptic bench twin``; with a soft-sensor scenario the
    model guard's limits are calibrated on as many clean guarded batches. With ``out``, also writes
    ``out/campaign.json`` and ``out/report.html``. ``progress(done, total)`` counts finished groups
    (one per seed, PAA mode and batch duration). ``scoring``: ``"block"`` (default) scores each
    attacked stretch with ``Engine.push_block``, ``"sample"`` with ``push_sample`` per sample (the
    same results; the reference path). ``reuse`` (default): the platform watches reuse the outcome
    of a ledger verification of byte-identical files and the Cedar decision of an identical request
    (ADR 0370); False runs every verification and decision (the same results; the reference path).

    Raises:
        ConfigError: ``scoring`` unknown, ``batches`` < 1, ``train_batches`` < 3, ``workers`` < 1
            or no scenario.
        OSError: ``out`` cannot be written.
    """
    from aseptic.bench import TRAIN_SEED, fit_detectors
    from aseptic.campaign._model import GuardKit, fit_guard_kit
    from aseptic.campaign._worker import SCORING, init_worker, run_group

    if scoring not in SCORING:
        raise ConfigError(f"campaign scoring must be one of {', '.join(SCORING)} (got {scoring!r})")
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
    fast = [s for s in runnable if _mode(s) == "true"]
    detectors = fit_detectors(train_batches, duration_h=train_duration_h) if fast else []
    kit: GuardKit | None = None
    if len(fast) < len(runnable):
        kit = fit_guard_kit(train_batches, duration_h=train_duration_h)
    fit_s = time.perf_counter() - t0
    seeds = [CAMPAIGN_SEED + i for i in range(batches)]
    groups = _groups(runnable, seeds)
    results: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    if workers == 1:  # in this process: no pool to start, nothing to pickle
        init_worker(detectors, kit, scoring, reuse=reuse)
        for done, group in enumerate(groups, start=1):
            results += run_group(group)
            if progress is not None:
                progress(done, len(groups))
    elif groups:
        with ProcessPoolExecutor(
            max_workers=workers, initializer=init_worker, initargs=(detectors, kit, scoring, reuse)
        ) as pool:
            for done, group_results in enumerate(pool.map(run_group, groups, chunksize=1), start=1):
                results += group_results
                if progress is not None:
                    progress(done, len(groups))
    score_s = time.perf_counter() - t1
    clean_by = {(r["mode"], r["duration_h"], r["seed"]): r for r in results if not r["key"]}
    rows = []
    for scenario in runnable:
        mode, d = _mode(scenario), scenario.preconditions.batch_duration_h
        runs = [r for r in results if r["key"] == scenario.id]
        rows.append(_score(scenario, runs, {seed: clean_by[(mode, d, seed)] for seed in seeds}))
    executed = sorted({t for s in runnable for t in s.techniques})
    detected = sorted({t for row in rows if row["detected"] for t in row["techniques"]})
    attacked = sum(1 for r in results if r["key"])
    clean_hours = sum(r["hours"] for r in results if not r["key"])
    report: dict[str, Any] = {
        "protocol": {
            "train_seeds": [TRAIN_SEED, TRAIN_SEED + train_batches - 1],
            "seeds": [seeds[0], seeds[-1]],
            "batches_per_scenario": batches,
            "detection_quorum": DETECTION_QUORUM,
            "sample_h": SAMPLE_H,
        },
        "scenarios": rows,
        "not_executed": not_executed,
        "coverage": {
            "techniques_executed": len(executed),
            "techniques_detected": len(detected),
            "executed": executed,
            "detected": detected,
            "missed": sorted(set(executed) - set(detected)),
            "not_executed": sorted({t for n in not_executed for t in n["techniques"]} - set(executed)),
            "scenarios_detected": sum(1 for r in rows if r["detected"]),
            "scenarios_evaluated": sum(1 for r in rows if r["detected"] is not None),
        },
        "totals": _totals(rows, results, clean_hours),
        "timing": {
            "fit_s": round(fit_s, 1),
            "score_s": round(score_s, 1),
            "workers": workers,
            "groups": len(groups),
            "attacked_batches": attacked,
            "clean_batches": len(results) - attacked,
            "attacked_batches_per_min": round(60.0 * attacked / score_s, 1) if score_s > 0 else None,
        },
    }
    if out is not None:
        from aseptic.campaign._report import write_campaign

        write_campaign(report, out)
    return report


def _totals(
    rows: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]], clean_hours: float
) -> dict[str, Any]:
    ttd = [t for r in rows if r["detected"] is not None for t in r["batch_ttd_h"]]
    episodes = sum(r["episodes"] for r in results if not r["key"] and r["mode"] == "true")
    fast_hours = sum(r["hours"] for r in results if not r["key"] and r["mode"] == "true")
    return {
        "median_ttd_h": round(statistics.median(ttd), 2) if ttd else None,
        "p95_ttd_h": _quantile(ttd, 0.95),
        "process_false_alarms_per_100h": round(100.0 * episodes / fast_hours, 3) if fast_hours else None,
        "clean_batch_hours": round(clean_hours, 1),
    }

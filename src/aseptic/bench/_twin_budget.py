"""The twin ensemble's false-alarm budget, calibrated on held-out clean *training* batches (ADR 0340).

Each group's false-alarm rate (episodes per 100 clean batch-hours) is measured on clean training
batches held out of the fit. The integrity groups (stale, replay, physics, twin residuals, control
loops) keep their own fitted limits and are charged to the budget first, at their measured rate;
the model-based group (batch MSPC + CUSUM + recipe, one ``BatchModel``) gets what is left, and its
limits are widened by one factor (``inflated``: per-tag |z| and CUSUM limits x f, T2 and SPE limits
x f^2, since those are squared distances), step by step along ``LADDER``, until its held-out rate
fits its share. Lowering the model's per-sample false-alarm rate does not work here: with a few
thousand held-out samples its empirical limits saturate at the largest value seen, and the CUSUM
limit is set by its own run-length rule (ADR 0340). Nothing here looks at a test seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np

from aseptic.clock import SimClock
from aseptic.detect import BatchModel, Detector, Engine, Finding, alarm_episodes

__all__ = ["LADDER", "Calibration", "calibrate_model_group", "group_rates", "inflated"]

Sample = dict[str, float]
# Limit-widening factors tried in order (1 = the limits as fitted).
LADDER = (1.0, 1.1, 1.2, 1.3, 1.45, 1.6, 1.8, 2.0, 2.25, 2.5, 3.0)
HOURS_PER_SAMPLE = 0.2


@dataclass(frozen=True)
class Calibration:
    """What the budget calibration chose and measured on the held-out training batches."""

    budget_per_100h: float
    holdout_batches: int
    holdout_hours: float
    other_rates: dict[str, float]  # integrity groups, measured (episodes / 100 h)
    model_share: float  # what was left for the model-based group
    factor: float  # the chosen LADDER step
    model_rate: float  # the model group's held-out rate at that step
    met: bool  # False: even the last step did not fit the share
    trace: tuple[tuple[float, float], ...]  # (factor, model rate) for every step tried

    def as_dict(self) -> dict[str, object]:
        return {
            "budget_per_100h": self.budget_per_100h,
            "holdout_batches": self.holdout_batches,
            "holdout_hours": round(self.holdout_hours, 1),
            "other_rates": {g: round(r, 3) for g, r in self.other_rates.items()},
            "model_share": round(self.model_share, 3),
            "factor": self.factor,
            "model_rate": round(self.model_rate, 3),
            "met": self.met,
            "trace": [[f, round(r, 3)] for f, r in self.trace],
        }


def inflated(model: BatchModel, factor: float) -> BatchModel:
    """``model`` with its limits widened: |z| and CUSUM limits x ``factor``, T2 and SPE x ``factor``^2."""
    if factor < 1.0:
        raise ValueError(f"limit factor must be >= 1 (got {factor})")
    if factor == 1.0:
        return model
    return replace(
        model,
        z_limit=model.z_limit * factor,
        t2_limit=model.t2_limit * factor * factor,
        spe_limit=model.spe_limit * factor * factor,
        cusum_h=model.cusum_h * factor,
    )


def group_rates(
    detectors: Sequence[Detector],
    batches: Sequence[Sequence[Sample]],
    group_of: Callable[[str], str],
    *,
    persistence: int = 3,
) -> dict[str, float]:
    """False-alarm episodes per 100 batch-hours of each group (``group_of(statistic)``) on ``batches``.

    Batches are scored whole with ``Engine.push_block`` (the same verdicts as sample by sample).
    Only groups with at least one statistic appear; ``"ensemble"`` is any group confirmed.
    """
    hours = HOURS_PER_SAMPLE * sum(len(b) for b in batches)
    if hours <= 0:
        raise ValueError("group_rates needs at least one sample")
    counts: dict[str, int] = {"ensemble": 0}
    if not detectors:
        return {"ensemble": 0.0}
    for i, samples in enumerate(batches):
        sink: list[Finding] = []
        engine = Engine(
            list(detectors),
            sink.append,
            clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)),
            persistence=persistence,
        )
        engine.start_batch(f"holdout-{i}")
        if not samples:
            continue
        block = engine.push_block(samples)
        columns: dict[str, list[int]] = {}
        for j, statistic in enumerate(block.statistics):
            columns.setdefault(group_of(statistic), []).append(j)
        for group, cols in columns.items():
            flags = np.asarray(block.confirmed[:, cols].any(axis=1), dtype=bool)
            counts[group] = counts.get(group, 0) + len(alarm_episodes([bool(f) for f in flags]))
        counts["ensemble"] += len(alarm_episodes([bool(f) for f in block.alarmed]))
    return {g: 100.0 * c / hours for g, c in counts.items()}


def calibrate_model_group(
    model_group: Callable[[float], list[Detector]],
    others: Sequence[Detector],
    holdout: Sequence[Sequence[Sample]],
    group_of: Callable[[str], str],
    *,
    budget_per_100h: float,
    group: str = "mspc",
    ladder: Sequence[float] = LADDER,
    persistence: int = 3,
) -> Calibration:
    """The smallest widening factor whose model group fits what the other groups leave of the budget.

    ``model_group(factor)`` gives the model-based detectors (fitted on the fit part of the training
    batches) with limits widened by ``factor``; ``others`` are the other groups' detectors, fitted
    on the same part. Both are scored on ``holdout`` (clean training batches not used to fit). If
    no step fits, the last one is returned with ``met=False``.

    Raises:
        ValueError: budget <= 0, no holdout batch, or an empty ladder.
    """
    if budget_per_100h <= 0:
        raise ValueError(f"false-alarm budget must be > 0 episodes / 100 h (got {budget_per_100h})")
    if not holdout or not ladder:
        raise ValueError("budget calibration needs held-out batches and at least one ladder step")
    other = group_rates(others, holdout, group_of, persistence=persistence)
    other.pop("ensemble", None)
    # Charged at their measured rate (episodes of different groups may overlap: conservative).
    share = max(budget_per_100h - sum(other.values()), 0.0)
    trace: list[tuple[float, float]] = []
    for factor in ladder:
        rates = group_rates(model_group(factor), holdout, group_of, persistence=persistence)
        rate = rates.get(group, 0.0)
        trace.append((factor, rate))
        if rate <= share:
            break
    hours = HOURS_PER_SAMPLE * sum(len(b) for b in holdout)
    factor, rate = trace[-1]
    return Calibration(
        budget_per_100h=budget_per_100h,
        holdout_batches=len(holdout),
        holdout_hours=hours,
        other_rates=other,
        model_share=share,
        factor=factor,
        model_rate=rate,
        met=rate <= share,
        trace=tuple(trace),
    )

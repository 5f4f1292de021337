"""The twin ensemble's false-alarm budget (ADR 0340): group rates on held-out batches, the model
group tightened step by step until it fits what the other groups leave of the budget."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from aseptic.bench._twin_budget import calibrate_model_group, group_rates, inflated
from aseptic.detect import Detector, Score, fit_model

Sample = dict[str, float]


class _Level:
    """Statistic ``<name>.level``: the sample's ``tag`` against a fixed limit (stateless)."""

    def __init__(self, name: str, tag: str, limit: float) -> None:
        self._name, self._tag, self._limit = name, tag, limit

    @property
    def name(self) -> str:
        return self._name

    def fit(self, batches: Sequence[Sequence[Sample]]) -> None:
        return None

    def reset(self) -> None:
        return None

    def score_one(self, sample: Sample) -> tuple[Score, ...]:
        return (Score(f"{self._name}.level", float(sample[self._tag]), self._limit),)


def _batch(values_a: Sequence[float], values_b: Sequence[float]) -> list[Sample]:
    return [
        {"batch_time_h": 0.2 * i, "a": float(a), "b": float(b)}
        for i, (a, b) in enumerate(zip(values_a, values_b, strict=True))
    ]


def _group(statistic: str) -> str:
    return statistic.split(".", 1)[0]


def _bursts(n: int, starts: Sequence[int], height: float, width: int = 4) -> np.ndarray:
    x = np.zeros(n)
    for s in starts:
        x[s : s + width] = height
    return x


def test_inflated_widens_every_model_limit() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detect"))
    from detect_synthetic import make_batch

    model = fit_model([make_batch(s, duration_h=20.0) for s in range(6)], seed=0)
    wide = inflated(model, 2.0)
    assert np.allclose(wide.z_limit, 2.0 * model.z_limit)
    assert np.allclose(wide.cusum_h, 2.0 * model.cusum_h)
    assert wide.t2_limit == pytest.approx(4.0 * model.t2_limit)
    assert wide.spe_limit == pytest.approx(4.0 * model.spe_limit)
    assert inflated(model, 1.0) is model
    with pytest.raises(ValueError, match=">= 1"):
        inflated(model, 0.5)


def test_group_rates_count_confirmed_episodes_per_group() -> None:
    n = 500  # 100 h
    a = _bursts(n, [10, 100, 200], 2.0)  # three 4-sample runs: three episodes at persistence 3
    b = _bursts(n, [50], 2.0, width=2) + _bursts(n, [300], 2.0)  # a 2-sample run never confirms
    detectors: list[Detector] = [_Level("m", "a", 1.0), _Level("o", "b", 1.0)]
    rates = group_rates(detectors, [_batch(a, b)], _group)
    assert rates == pytest.approx({"m": 3.0, "o": 1.0, "ensemble": 4.0})
    rates_p1 = group_rates(detectors, [_batch(a, b)], _group, persistence=1)
    assert rates_p1["o"] == pytest.approx(2.0)


def _holdout() -> list[list[Sample]]:
    n = 500
    # Model statistic: 6 bursts of heights 1.5 .. 4 per 100 h; the other group: 1 burst.
    a = _bursts(n, [20, 80, 140, 200, 260, 320], 0.0)
    for k, s in enumerate([20, 80, 140, 200, 260, 320]):
        a[s : s + 4] = 1.5 + 0.5 * k
    b = _bursts(n, [400], 2.0)
    return [_batch(a, b)]


def test_calibration_picks_the_first_step_that_fits_the_share() -> None:
    asked: list[float] = []

    def model_group(factor: float) -> list[Detector]:
        asked.append(factor)
        return [_Level("m", "a", factor)]

    others: list[Detector] = [_Level("o", "b", 1.0)]
    cal = calibrate_model_group(
        model_group, others, _holdout(), _group, budget_per_100h=4.0, group="m", ladder=(1.0, 2.0, 3.0, 5.0)
    )
    # Other group charged 1.0: share 3.0. Limit 1 -> 6 episodes, 2 -> 4, 3 -> 2 (heights 3.5, 4).
    assert cal.other_rates == pytest.approx({"o": 1.0})
    assert cal.model_share == pytest.approx(3.0)
    assert [f for f, _ in cal.trace] == [1.0, 2.0, 3.0]
    assert [r for _, r in cal.trace] == pytest.approx([6.0, 4.0, 2.0])
    assert cal.met and cal.factor == 3.0 and cal.model_rate == pytest.approx(2.0)
    assert asked == [1.0, 2.0, 3.0]  # stops at the first step that fits


def test_calibration_says_when_no_step_fits() -> None:
    def never_quiet(factor: float) -> list[Detector]:
        return [_Level("m", "a", 1.0)]  # ignores the factor: 6 episodes whatever the step

    cal = calibrate_model_group(
        never_quiet, [], _holdout(), _group, budget_per_100h=1.0, group="m", ladder=(1.0, 2.0)
    )
    assert not cal.met and cal.factor == 2.0 and cal.model_rate == pytest.approx(6.0)
    assert cal.as_dict()["met"] is False


def test_calibration_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="budget"):
        calibrate_model_group(lambda f: [], [], _holdout(), _group, budget_per_100h=0.0)
    with pytest.raises(ValueError, match="held-out"):
        calibrate_model_group(lambda f: [], [], [], _group, budget_per_100h=0.4)

"""The redundancy detector's ramp GLR (ADR 0401), on synthetic loop / check pairs.

The pairs follow the twin's error model for a check element (offset, drift, random-walk wander,
white noise on both elements: ``twin._sensors.CHECK_ERRORS``), drawn here with numpy so that a
ramp's size against the filter is known exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from aseptic.detect import RedundancyDetector, load_detector, save_detector
from aseptic.detect._detector_file import decode_detector, encode_detector
from aseptic.detect._redundancy_model import DifferenceFilter
from aseptic.detect._trend import TrendGlr, trend_limit

pytestmark = pytest.mark.requirement("ASE-DETECT")

Sample = dict[str, float]
STEP_H = 0.2
SAMPLES = 400  # 80 h
# (loop, check, level, noise sd per element, offset sd, drift sd per h, wander sd per sample)
PAIRS = (
    ("temperature_k", "temperature_2_k", 298.0, 0.01, 0.05, 0.0005, 0.001),
    ("ph", "ph_2", 6.5, 0.002, 0.02, 0.001, 0.0002),
)


def _batch(seed: int, ramp: tuple[str, float, float] | None = None) -> list[Sample]:
    """One batch; ``ramp``: (loop tag, onset h, slope per h) added to that loop reading."""
    rng = np.random.default_rng(seed)
    t = STEP_H * np.arange(SAMPLES)
    out: list[Sample] = [{"batch_time_h": float(x)} for x in t]
    for loop, check, level, noise, offset_sd, drift_sd, wander_sd in PAIRS:
        truth = level + 0.05 * np.sin(t / 7.0)
        offset, drift = rng.standard_normal(2) * (offset_sd, drift_sd)
        error = offset + drift * t + np.cumsum(rng.standard_normal(SAMPLES)) * wander_sd
        y = truth + rng.standard_normal(SAMPLES) * noise
        c = truth + error + rng.standard_normal(SAMPLES) * noise
        if ramp is not None and ramp[0] == loop:
            y = y + ramp[2] * np.maximum(t - ramp[1], 0.0)
        for i, sample in enumerate(out):
            sample[loop], sample[check] = float(y[i]), float(c[i])
    return out


@pytest.fixture(scope="module")
def train() -> list[list[Sample]]:
    return [_batch(seed) for seed in range(8)]


@pytest.fixture(scope="module")
def fitted(train: list[list[Sample]]) -> RedundancyDetector:
    detector = RedundancyDetector(trend=True)
    detector.fit(train)
    return detector


def _first_crossings(
    detector: RedundancyDetector, batch: list[Sample], after: float = 0.0
) -> dict[str, float]:
    """Per statistic, the first sample over its limit from ``after`` hours on."""
    detector.reset()
    first: dict[str, float] = {}
    for sample in batch:
        for score in detector.score_one(sample):
            if score.value > score.limit and sample["batch_time_h"] >= after:
                first.setdefault(score.statistic, sample["batch_time_h"])
    return first


def test_the_signature_is_the_filters_own_response_to_a_ramp() -> None:
    """Willsky-Jones: fed a noise-free ramp, the innovations are exactly slope x signature, so the
    GLR at the true onset estimates the slope exactly and equals slope^2 x sum g^2."""
    flt = DifferenceFilter(0.014, 0.001, 0.05, 0.0007, STEP_H)
    glr = TrendGlr(window=40)
    onset, slope = 10.0, 0.003
    for i in range(80):  # the window (8 h) still holds the onset at the end (15.8 h)
        t = i * STEP_H
        d = slope * max(t - onset, 0.0)
        expected, variance = flt.predict(t)
        if math.isfinite(expected):
            z = (d - expected) / math.sqrt(variance)
            glr.step(t, t - flt.t, flt.gain(), variance, np.array([z]))
        flt.update(t, d)
    age = int(np.argmin(np.abs(glr.onset - onset)))
    assert glr.onset[age] == pytest.approx(onset)
    assert glr.u[0, age] / glr.a[age] == pytest.approx(slope, rel=1e-9)
    # Onsets after the true one see only part of the ramp: a worse fit, a smaller GLR.
    values = glr.u[0] ** 2 / np.where(glr.a > 0, glr.a, 1.0)
    assert values[age] == pytest.approx(slope**2 * glr.a[age], rel=1e-9)
    assert values[age] > values[age - 5] > 0


def test_the_limit_is_crossed_at_about_the_nominal_rate_on_white_innovations() -> None:
    flt = DifferenceFilter(0.014, 0.001, 0.05, 0.0007, STEP_H)
    gains, variances, times = [], [], []
    for i in range(300):
        t = i * STEP_H
        _, variance = flt.predict(t)
        if i > 0:
            gains.append(flt.gain())
            variances.append(variance)
            times.append(t)
        flt.update(t, 0.0)
    args = (np.array(gains), np.array(variances), np.array(times))
    limit = trend_limit(*args, window=50, arl_samples=2000.0, samples=200_000, seed=1)
    assert 2.0 * math.log(50) < limit < 2.0 * math.log(50 * 2000.0) + 2.0  # between 1 onset and Bonferroni
    # Another seed's white innovations cross it upward about once per 2,000 samples.
    glr, rng = TrendGlr(50, 200), np.random.default_rng(2)
    over = np.array(
        [
            glr.step(float(t), STEP_H, g, float(v), rng.standard_normal(200)) > limit
            for g, v, t in zip(*args, strict=True)
        ]
    )
    ups = int(over[0].sum() + (over[1:] & ~over[:-1]).sum())
    assert 0.4 < ups / (over.size / 2000.0) < 2.5


def test_clean_pairs_stay_under_both_limits(fitted: RedundancyDetector) -> None:
    assert set(fitted.limits()) == {"disagreement", "trend"}
    assert fitted.trend_limit > 0
    for seed in (100, 101, 102):
        assert _first_crossings(fitted, _batch(seed)) == {}


def test_a_ramp_under_the_cusums_dead_zone_is_found_by_the_trend_first(fitted: RedundancyDetector) -> None:
    """A slow ramp (0.003 K/h: its innovations settle near 0.6 sd, under the CUSUM's k = 0.75):
    over ten batches the GLR finds more of them, and sooner, than the CUSUM."""
    end = SAMPLES * STEP_H
    found = {"redundancy.trend": [], "redundancy.disagreement": []}
    for seed in range(200, 210):
        first = _first_crossings(fitted, _batch(seed, ("temperature_k", 30.0, 0.003)), after=30.0)
        for statistic, times in found.items():
            times.append(first.get(statistic, end))
    trend, cusum = (np.array(found[s]) for s in ("redundancy.trend", "redundancy.disagreement"))
    assert (trend < end).sum() > (cusum < end).sum()
    assert np.median(trend) < np.median(cusum)
    assert (trend < cusum).sum() > (cusum < trend).sum()


def test_the_trend_finding_names_the_ramped_loop_first(fitted: RedundancyDetector) -> None:
    fitted.reset()
    for sample in _batch(203, ("ph", 30.0, 0.0012)):
        trend = fitted.score_one(sample)[1]
        if trend.value > trend.limit:
            assert trend.statistic == "redundancy.trend"
            assert trend.contributions[0][0] == "ph"
            assert math.isclose(sum(s for _, s in trend.contributions), 1.0)
            return
    pytest.fail("the pH ramp was not found by the trend statistic")


def test_the_trend_is_off_by_default_and_the_cusum_alone_is_unchanged(train: list[list[Sample]]) -> None:
    plain = RedundancyDetector()
    plain.fit(train)
    both = RedundancyDetector(trend=True)
    both.fit(train)
    assert set(plain.limits()) == {"disagreement"} and plain.limit == both.limit
    batch = _batch(300, ("temperature_k", 30.0, 0.01))
    plain.reset()
    both.reset()
    for sample in batch:
        alone = plain.score_one(sample)
        assert len(alone) == 1 and alone[0] == both.score_one(sample)[0]


def test_save_load_round_trip_keeps_the_trend(fitted: RedundancyDetector, tmp_path: Path) -> None:
    path = tmp_path / "redundancy.json"
    loaded = load_detector(path, expected_digest=save_detector(fitted, path))
    assert isinstance(loaded, RedundancyDetector) and loaded.limits() == fitted.limits()
    batch = _batch(400, ("ph", 30.0, 0.002))
    fitted.reset()
    assert [fitted.score_one(s) for s in batch] == [loaded.score_one(s) for s in batch]


def test_a_file_from_before_the_trend_loads_as_the_cusum_alone(fitted: RedundancyDetector) -> None:
    doc = json.loads(encode_detector(fitted))
    for key in ("trend", "trend_window_h", "trend_limit"):
        del doc["meta"][key]
    old = decode_detector(json.dumps(doc).encode(), source="old.json")
    assert isinstance(old, RedundancyDetector) and set(old.limits()) == {"disagreement"}
    doc["meta"]["trend"] = "yes"
    with pytest.raises(Exception, match="trend must be true or false"):
        decode_detector(json.dumps(doc).encode(), source="bad.json")


def test_causal_a_later_ramp_does_not_change_earlier_trend_scores(fitted: RedundancyDetector) -> None:
    clean, ramped = _batch(500), _batch(500, ("temperature_k", 50.0, 0.02))
    fitted.reset()
    before = [fitted.score_one(s) for s in clean]
    fitted.reset()
    after = [fitted.score_one(s) for s in ramped]
    cut = int(50.0 / STEP_H) + 1
    assert before[:cut] == after[:cut] and before[cut + 5 :] != after[cut + 5 :]


def test_a_bad_trend_window_is_refused() -> None:
    with pytest.raises(ValueError, match="trend_window_h must be positive"):
        RedundancyDetector(trend=True, trend_window_h=0.0)

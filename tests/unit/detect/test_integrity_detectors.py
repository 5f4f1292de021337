"""Integrity detectors: a stale value, a replayed segment, impossible physics; and their contract."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from twin_support import twin_samples

from aseptic.campaign import Attack, Bias, Replay, apply_attacks
from aseptic.clock import SimClock
from aseptic.detect import (
    Detector,
    Engine,
    Finding,
    PhysicsDetector,
    ReplayDetector,
    StaleValueDetector,
)
from aseptic.errors import InputError

Sample = dict[str, float]
DURATION_H = 60.0

FACTORIES: dict[str, Callable[[], Detector]] = {
    "stale": StaleValueDetector,
    "replay": ReplayDetector,
    "physics": PhysicsDetector,
}


def _samples(seed: int, n: int) -> list[list[Sample]]:
    return twin_samples(seed, n, DURATION_H)


@pytest.fixture(scope="module")
def train() -> list[list[Sample]]:
    return _samples(0, 6)


@pytest.fixture(scope="module")
def clean() -> list[Sample]:
    return _samples(500, 1)[0]


@pytest.fixture(scope="module")
def fitted(train: list[list[Sample]]) -> dict[str, Detector]:
    out = {}
    for name, factory in FACTORIES.items():
        detector = factory()
        detector.fit(train)
        out[name] = detector
    return out


class _Freeze:
    """Hold one tag at its value before ``start_h`` (what a stale historian link shows)."""

    def __init__(self, tag: str, start_h: float, duration_h: float) -> None:
        self.tag, self.start_h, self.end_h = tag, start_h, start_h + duration_h
        self.held = math.nan

    def apply(self, time_h: float, values: Sample) -> Sample:
        out = dict(values)
        if self.start_h <= time_h < self.end_h:
            out[self.tag] = self.held
        else:
            self.held = out[self.tag]
        return out


def _run(
    detector: Detector, batch: list[Sample], tamper: Callable[[float, Sample], Sample] | None
) -> list[Finding]:
    findings: list[Finding] = []
    engine = Engine([detector], findings.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("B-1")
    for sample in batch:
        engine.push_sample(tamper(sample["batch_time_h"], sample) if tamper else sample)
    return findings


def _attack(attacks: list[Attack]) -> Callable[[float, Sample], Sample]:
    return lambda t, s: apply_attacks(attacks, t, s)


def test_frozen_temperature_is_reported_as_denial_of_view(
    fitted: dict[str, Detector], clean: list[Sample]
) -> None:
    freeze = _Freeze("temperature_k", 30.0, 5.0)
    findings = _run(fitted["stale"], clean, freeze.apply)
    inside = [f for f in findings if 30.0 <= f.batch_time_h <= 35.0]
    assert inside and inside[0].tags[0] == "temperature_k"
    assert inside[0].technique == "T0815" and inside[0].detector == "stale.hold"


def test_stale_detector_watches_measurements_not_recipe_flows_or_setpoints(
    fitted: dict[str, Detector],
) -> None:
    stale = fitted["stale"]
    assert isinstance(stale, StaleValueDetector)
    assert "temperature_k" in stale.tags and "ph" in stale.tags
    assert not {"sugar_feed_l_per_h", "aeration_m3_per_min", "ph_sp", "batch_time_h"} & set(stale.tags)


def test_sensor_that_holds_in_clean_batches_is_not_watched(
    train: list[list[Sample]], clean: list[Sample]
) -> None:
    # A head-pressure transmitter that reports a constant in normal operation may keep doing so.
    held_train = [[{**s, "head_pressure_bar": 0.6} for s in batch] for batch in train]
    stale = StaleValueDetector()
    stale.fit(held_train)
    assert "head_pressure_bar" in stale.excluded and "head_pressure_bar" not in stale.tags
    held_clean = [{**s, "head_pressure_bar": 0.6} for s in clean]
    assert _run(stale, held_clean, None) == []


def test_replayed_ph_segment_is_reported_naming_ph(fitted: dict[str, Detector], clean: list[Sample]) -> None:
    findings = _run(fitted["replay"], clean, _attack([Replay("ph", 40.0, 10.0, record_from_h=20.0)]))
    inside = [f for f in findings if 40.0 <= f.batch_time_h <= 50.0]
    assert inside and inside[0].tags[0] == "ph" and inside[0].detector == "replay.match"
    assert inside[0].technique == "T0856"


def test_frozen_reading_is_not_reported_twice_as_a_replay(
    fitted: dict[str, Detector], clean: list[Sample]
) -> None:
    # A held value repeats itself exactly; that is the stale detector's finding, not a replay.
    freeze = _Freeze("ph", 30.0, 10.0)
    assert _run(fitted["replay"], clean, freeze.apply) == []


def test_spoofed_level_breaks_the_volume_balance(fitted: dict[str, Detector], clean: list[Sample]) -> None:
    findings = _run(fitted["physics"], clean, _attack([Bias("volume_l", 30.0, 10.0, 1500.0)]))
    inside = [f for f in findings if 30.0 <= f.batch_time_h <= 40.0]
    assert inside and inside[0].detector == "physics.balance" and inside[0].tags[0] == "volume_l"
    assert inside[0].technique == "T0856"


def test_low_ph_with_base_shut_is_a_loop_disagreement(
    fitted: dict[str, Detector], clean: list[Sample]
) -> None:
    def tamper(t: float, s: Sample) -> Sample:
        if 30.0 <= t < 34.0:
            return {**s, "ph": s["ph_sp"] - 0.2, "base_flow_l_per_h": 0.0}
        return s

    findings = _run(fitted["physics"], clean, tamper)
    inside = [f for f in findings if f.detector == "physics.loop" and 30.0 <= f.batch_time_h <= 34.0]
    assert inside and inside[0].tags == ("ph", "base_flow_l_per_h")


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_clean_batch_opens_no_integrity_alarm(
    name: str, fitted: dict[str, Detector], clean: list[Sample]
) -> None:
    assert _run(fitted[name], clean, None) == []


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_same_data_gives_identical_scores(name: str, train: list[list[Sample]], clean: list[Sample]) -> None:
    first, second = FACTORIES[name](), FACTORIES[name]()
    first.fit(train)
    second.fit(train)
    assert [first.score_one(s) for s in clean[:150]] == [second.score_one(s) for s in clean[:150]]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_scores_are_finite_with_missing_and_nan_tags(
    name: str, fitted: dict[str, Detector], clean: list[Sample]
) -> None:
    detector = fitted[name]
    detector.reset()
    for sample in clean[:80]:
        degraded = {k: v for k, v in sample.items() if k not in ("ph", "volume_l", "sugar_feed_l_per_h")}
        degraded["dissolved_o2_mg_per_l"] = math.nan
        for scores in (detector.score_one(degraded), detector.score_one({"batch_time_h": 1.0})):
            for score in scores:
                assert score.statistic.startswith(name + ".")
                assert math.isfinite(score.value) and score.value >= 0 and score.limit > 0
                shares = [s for _, s in score.contributions]
                assert not shares or math.isclose(sum(shares), 1.0)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_unfitted_detector_refuses_to_score(name: str) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        FACTORIES[name]().score_one({"batch_time_h": 0.0})


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_training_without_batches_is_rejected(name: str) -> None:
    with pytest.raises(InputError):
        FACTORIES[name]().fit([])

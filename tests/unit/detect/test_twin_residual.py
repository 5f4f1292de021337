"""Twin residuals and Finding explanations: contract (determinism, causality, finite scores, missing
tags), an in-loop spoof caught at its onset, and expected vs observed in the Finding."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from twin_support import twin_samples

from aseptic.campaign import Bias, InLoopPlant
from aseptic.clock import SimClock
from aseptic.detect import Engine, Finding, TwinResidualDetector
from aseptic.detect._explain import classify_cause
from aseptic.errors import InputError

Sample = dict[str, float]
DURATION_H = 40.0


def _samples(seed: int, n: int) -> list[list[Sample]]:
    return twin_samples(seed, n, DURATION_H)


@pytest.fixture(scope="module")
def train() -> list[list[Sample]]:
    return _samples(0, 6)


@pytest.fixture(scope="module")
def fitted(train: list[list[Sample]]) -> TwinResidualDetector:
    detector = TwinResidualDetector(seed=3)
    detector.fit(train)
    return detector


def _scores(detector: TwinResidualDetector, batch: list[Sample]) -> list[tuple[float, float]]:
    detector.reset()
    return [tuple(s.value for s in detector.score_one(x)) for x in batch]  # type: ignore[misc]


def test_same_seed_and_data_give_identical_scores(
    train: list[list[Sample]], fitted: TwinResidualDetector
) -> None:
    other = TwinResidualDetector(seed=3)
    other.fit(train)
    batch = _samples(900, 1)[0]
    assert _scores(fitted, batch) == _scores(other, batch)


def test_scores_are_causal_finite_and_named(fitted: TwinResidualDetector) -> None:
    batch = _samples(901, 1)[0]
    full = _scores(fitted, batch)
    prefix = _scores(fitted, batch[:80])
    assert full[:80] == prefix  # a score never depends on later samples
    fitted.reset()
    for sample in batch:
        for score in fitted.score_one(sample):
            assert score.statistic in ("twin.step", "twin.level")
            assert math.isfinite(score.value) and score.value >= 0 and score.limit == 1.0
            shares = [s for _, s in score.contributions]
            assert not shares or math.isclose(sum(shares), 1.0, rel_tol=1e-9)


def test_missing_and_nan_tags_are_tolerated(fitted: TwinResidualDetector) -> None:
    fitted.reset()
    for sample in _samples(902, 1)[0][:40]:
        degraded = {k: v for k, v in sample.items() if k not in ("ph", "volume_l")}
        degraded["temperature_k"] = math.nan
        for scores in (
            fitted.score_one(degraded),
            fitted.score_one({"batch_time_h": sample["batch_time_h"]}),
        ):
            assert all(math.isfinite(s.value) for s in scores)


def test_unfitted_and_too_few_batches_are_refused(train: list[list[Sample]]) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        TwinResidualDetector().score_one({"batch_time_h": 1.0})
    with pytest.raises(InputError, match="at least 3"):
        TwinResidualDetector().fit(train[:2])


def test_in_loop_temperature_spoof_is_caught_at_its_onset_with_expected_and_observed(
    fitted: TwinResidualDetector,
) -> None:
    attack = Bias("temperature_k", start_h=20.0, duration_h=10.0, offset=2.0)
    plant = InLoopPlant(903, [attack], duration_h=DURATION_H, paa_control="true")
    findings: list[Finding] = []
    engine = Engine([fitted], findings.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("B-1")
    while not plant.finished:
        engine.push_sample(plant.step())
    inside = [f for f in findings if 20.0 <= f.batch_time_h <= 30.0]
    assert inside and inside[0].detector.startswith("twin.")
    # The spoofed probe, or the cooling water the controller moved against the heat balance.
    assert inside[0].tags[0] in ("temperature_k", "cooling_water_l_per_h")
    first = inside[0]
    assert len(first.expected) == len(first.tags) == len(first.observed)
    assert first.cause == "attack" and first.technique in ("T0856", "T0831")
    payload = first.to_payload()
    assert {c["tag"] for c in payload["contributions"] if "expected" in c} == set(first.tags)
    assert payload["cause"] == "attack"


def test_base_drop_with_ph_below_setpoint_is_a_process_fault_not_an_attack() -> None:
    sample = {"ph": 6.40, "ph_sp": 6.5, "base_flow_l_per_h": 5.0}
    assert classify_cause("mspc.t2", ["base_flow_l_per_h"], [40.0], [5.0], sample) == (
        "process fault",
        "BASE_FLOW_DROP",
    )
    held = {"ph": 6.5, "ph_sp": 6.5, "base_flow_l_per_h": 5.0}  # the loop holds pH: spoofed probe?
    assert classify_cause("mspc.t2", ["base_flow_l_per_h"], [40.0], [5.0], held) == ("attack", None)
    assert classify_cause("replay.match", ["base_flow_l_per_h"], [40.0], [5.0], sample) == ("attack", None)


def test_ph_falling_while_base_is_short_is_the_base_flow_fault() -> None:
    sample = {"ph": 6.40, "ph_sp": 6.5, "base_flow_l_per_h": 5.0}
    assert classify_cause("mspc.tag", ["ph"], [6.5], [6.4], sample, expect=lambda tag: 40.0) == (
        "process fault",
        "BASE_FLOW_DROP",
    )
    more_base = {"ph": 6.40, "ph_sp": 6.5, "base_flow_l_per_h": 90.0}  # the loop is fighting: not the fault
    assert classify_cause("mspc.tag", ["ph"], [6.5], [6.4], more_base, expect=lambda tag: 40.0) == (
        "attack",
        None,
    )
    assert classify_cause("mspc.tag", ["ph"], [6.5], [6.4], sample) == ("attack", None)  # no expectation

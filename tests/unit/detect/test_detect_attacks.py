"""Attacks on synthetic batches are found and attributed; clean batches stay within the stated FAR."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from detect_synthetic import MakeBatch, Sample

from aseptic.campaign import Attack, Bias, Ramp, apply_attacks
from aseptic.clock import SimClock
from aseptic.detect import (
    BatchModel,
    Detector,
    Engine,
    Finding,
    MspcDetector,
    RecipeDetector,
    ResidualCusum,
    alarm_episodes,
    confirm_alarms,
    fit_model,
)

CLEAN_SEEDS = range(1000, 1030)


@pytest.fixture(scope="module")
def model(training_batches: list[list[Sample]]) -> BatchModel:
    return fit_model(training_batches, seed=0)


def _spread(model: BatchModel, tag: str) -> float:
    """The tag's typical batch-to-batch standard deviation (median over batch time)."""
    return float(np.median(model.alignment.spread[:, model.tags.index(tag)]))


def _run(detectors: list[Detector], batch: list[Sample], attacks: list[Attack]) -> list[Finding]:
    findings: list[Finding] = []
    engine = Engine(detectors, findings.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("B-1")
    for sample in batch:
        engine.push_sample(apply_attacks(attacks, sample["batch_time_h"], sample))
    return findings


def test_spoofed_offgas_co2_bias_is_found_and_attributed(model: BatchModel, batch_maker: MakeBatch) -> None:
    attack = Bias(
        "offgas_co2_pct", start_h=20.0, duration_h=10.0, offset=8 * _spread(model, "offgas_co2_pct")
    )
    for seed in range(1000, 1005):
        findings = _run([MspcDetector(model)], batch_maker(seed), [attack])
        inside = [f for f in findings if 20.0 <= f.batch_time_h < 30.0]
        assert inside, f"seed {seed}: no finding during the bias"
        first = min(inside, key=lambda f: f.batch_time_h)
        assert first.batch_time_h <= 21.0  # persistence 3 = 0.6 h, one sample of slack
        assert first.tags[0] == "offgas_co2_pct"
        assert first.technique == "T0856"


def test_slow_ramp_on_dissolved_o2_is_found_by_cusum_naming_the_tag(
    model: BatchModel, batch_maker: MakeBatch
) -> None:
    slope = 2.0 * _spread(model, "dissolved_o2_mg_per_l")  # per hour: 0.4 spreads per sample
    attack = Ramp("dissolved_o2_mg_per_l", start_h=15.0, duration_h=20.0, slope_per_h=slope)
    for seed in range(1000, 1005):
        findings = _run([ResidualCusum(model)], batch_maker(seed), [attack])
        inside = [f for f in findings if 15.0 <= f.batch_time_h < 35.0]
        assert inside, f"seed {seed}: the CUSUM missed the ramp"
        assert inside[0].detector == "cusum.drift"
        assert inside[0].tags[0] == "dissolved_o2_mg_per_l"


def test_recipe_actuator_change_is_manipulation_of_control(model: BatchModel, batch_maker: MakeBatch) -> None:
    assert "aeration_m3_per_min" in model.recipe.tags
    attack = Bias("aeration_m3_per_min", start_h=25.0, duration_h=5.0, offset=-15.0)
    findings = _run([RecipeDetector(model)], batch_maker(1000), [attack])
    assert [f.detector for f in findings] == ["recipe.departure"]
    assert 25.0 <= findings[0].batch_time_h <= 25.6
    assert findings[0].tags[0] == "aeration_m3_per_min"
    assert findings[0].shares[0] > 0.9
    assert findings[0].technique == "T0831"


def test_clean_batches_stay_within_the_stated_false_alarm_rate(
    model: BatchModel, batch_maker: MakeBatch
) -> None:
    """Per-sample exceedances on 30 unseen clean batches (6030 samples) are consistent with alpha.

    alpha = 0.01 is shared by T2, SPE and the per-tag limits. Exceedances are autocorrelated, so
    the bound is generous (3 alpha); a detector whose limits were set on its own training batches,
    or not at all, exceeds it several times over.
    """
    detector = MspcDetector(model)
    exceed = {"mspc.t2": 0, "mspc.spe": 0, "mspc.tag": 0}
    confirmed_episodes = 0
    samples = 0
    for seed in CLEAN_SEEDS:
        flags = []
        for sample in batch_maker(seed):
            scores = detector.score_one(sample)
            samples += 1
            for score in scores:
                exceed[score.statistic] += score.exceeds
            flags.append(any(s.exceeds for s in scores))
        confirmed_episodes += len(alarm_episodes(confirm_alarms(flags, 3)))
    rate = sum(exceed.values()) / samples
    assert rate <= 3 * model.false_alarm_rate, exceed
    assert confirmed_episodes <= 5, f"{confirmed_episodes} alarm episodes in {len(CLEAN_SEEDS)} clean batches"


def test_limits_come_from_held_out_batches_not_the_training_fit(
    model: BatchModel, training_batches: list[list[Sample]]
) -> None:
    """In-sample limits would be too tight: the held-out SPE limit is above the in-sample quantile."""
    detector = MspcDetector(model)
    in_sample = [detector.score_one(s)[1].value for b in training_batches for s in b]
    alpha = model.false_alarm_rate / 3
    assert model.spe_limit > float(np.quantile(in_sample, 1 - alpha))
    assert model.training_batches + model.excluded_batches == len(training_batches)

"""The ensemble: limits from held-out normal data, detection, explanations and techniques."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from tabular_synthetic import COLUMNS, KINDS, make_stream

from aseptic.detect import (
    DynamicPcaDetector,
    Ensemble,
    EwmaResidualDetector,
    FrozenValueDetector,
    TagPredictorDetector,
)
from aseptic.detect._predictor import _fit_coef
from aseptic.errors import InputError


@pytest.fixture(scope="module")
def ensemble() -> Ensemble:
    ens = Ensemble(
        [
            TagPredictorDetector(seed=3),
            EwmaResidualDetector(seed=3),
            DynamicPcaDetector(lags=1, seed=3),
            FrozenValueDetector(seed=3),
        ],
        false_alarm_rate=0.02,
        kinds=KINDS,
    )
    ens.fit(make_stream(10, 600), COLUMNS)
    return ens


def test_limits_hold_the_stated_false_alarm_rate_on_held_out_and_fresh_normal_data(
    ensemble: Ensemble,
) -> None:
    assert ensemble.held_out_rate <= 0.02
    fresh = np.concatenate([ensemble.decide(make_stream(s, 400)).flags for s in range(20, 25)])
    assert fresh.mean() < 0.06  # fresh runs drift a little from the training run; still near the design rate
    assert set(ensemble.limits) == set(ensemble.members)
    assert ensemble.limits["frozen.hold"] == 1.0  # the frozen-value rule keeps its own limit


def test_spoofed_sensor_bias_is_flagged_and_named_with_t0856(ensemble: Ensemble) -> None:
    x = make_stream(30, 200)
    x[100:, 2] += 1.5  # temp reads 1.5 units high: the others say it should not
    decision = ensemble.decide(x)
    assert decision.flags[:100].mean() < 0.1
    assert decision.flags[105:].mean() > 0.9
    why = ensemble.explain(x, 120)
    assert why.contributions[0][0] == "temp"
    assert why.technique == "T0856"
    assert math.isclose(sum(s for _, s in why.contributions), 1.0)
    assert why.observed[0] == x[120, 2]
    assert abs(why.expected[0] - (x[120, 2] - 1.5)) < 0.8  # expected: what temp would read unspoofed


def test_manipulated_actuator_is_named_with_t0831(ensemble: Ensemble) -> None:
    x = make_stream(31, 200)
    x[100:, 3] -= 2.0  # the valve is driven away from what the process needs
    why = ensemble.explain(x, 130)
    assert ensemble.decide(x).flags[105:].mean() > 0.9
    assert why.contributions[0][0] == "valve"
    assert why.technique == "T0831"


def test_frozen_reading_is_denial_of_view_t0815(ensemble: Ensemble) -> None:
    x = make_stream(32, 200)
    x[100:, 1] = x[100, 1]  # level frozen at its last value
    decision = ensemble.decide(x)
    assert decision.flags[110:].all()
    why = ensemble.explain(x, 150)
    assert why.technique == "T0815"
    assert why.contributions[0][0] == "level"


def test_explanation_becomes_a_finding_with_expected_and_observed(ensemble: Ensemble) -> None:
    x = make_stream(33, 150)
    x[80:, 0] += 2.0
    why = ensemble.explain(x, 100)
    finding = why.to_finding(time=datetime(2026, 1, 1, tzinfo=UTC), stream_id="unit-7")
    payload = finding.to_payload()
    top = payload["contributions"][0]
    assert top["tag"] == "flow_in"
    assert {"expected", "observed", "share"} <= set(top)
    assert payload["technique"] == why.technique
    assert finding.contributions[0][0] == "flow_in"


def test_explain_outside_the_stream_is_refused(ensemble: Ensemble) -> None:
    with pytest.raises(InputError, match="outside"):
        ensemble.explain(make_stream(1, 10), 10)


def test_ensemble_refuses_too_little_training_data() -> None:
    with pytest.raises(InputError, match="at least 50 samples"):
        Ensemble([TagPredictorDetector()]).fit(make_stream(0, 40), COLUMNS)


def test_ensemble_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="unique"):
        Ensemble([TagPredictorDetector(), TagPredictorDetector()])
    with pytest.raises(ValueError, match="unknown"):
        Ensemble([TagPredictorDetector()], members=["predictor.nope"])
    with pytest.raises(ValueError, match="false_alarm_rate"):
        Ensemble([TagPredictorDetector()], false_alarm_rate=0.7)


def test_closed_form_ridge_matches_scikit_learn() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    coef, intercept = _fit_coef(z, 3.0)
    for j in range(5):
        others = [k for k in range(5) if k != j]
        ref = Ridge(alpha=3.0).fit(z[:, others], z[:, j])
        np.testing.assert_allclose(coef[others, j], ref.coef_, rtol=1e-8, atol=1e-10)
        assert math.isclose(intercept[j], float(ref.intercept_), rel_tol=1e-8, abs_tol=1e-10)
        assert coef[j, j] == 0.0

"""The hydraulic consistency detectors (PLC level rules, tank mass balance) on a simulated tank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydraulic_synthetic import COLUMNS, START_M, STOP_M, simulate

from aseptic.detect import (
    ControlRuleDetector,
    Ensemble,
    FrozenValueDetector,
    MassBalanceDetector,
    TabularDetector,
    TagPredictorDetector,
    load_tabular_detector,
    save_tabular_detector,
)
from aseptic.errors import InputError

LEVEL = COLUMNS.index("L_T1")
FLOW = COLUMNS.index("F_PU1")
STATUS = COLUMNS.index("S_PU1")


@pytest.fixture(scope="module")
def normal() -> np.ndarray:
    return simulate(0, 2000)


def _rule() -> ControlRuleDetector:
    return ControlRuleDetector(levels=["L_T1"], seed=3)


def _balance() -> MassBalanceDetector:
    return MassBalanceDetector(levels=["L_T1"], flows=["F_PU1", "F_OUT"], seed=3)


HYDRAULIC = {"rule": _rule, "balance": _balance}


def test_control_rule_learns_the_plc_stop_and_start_levels(normal: np.ndarray) -> None:
    detector = _rule()
    detector.fit(normal, COLUMNS)
    (rule,) = detector.rules  # PU2 runs on a timer: no level rule for it
    assert COLUMNS[rule.status] == "S_PU1" and COLUMNS[rule.level] == "L_T1"
    assert rule.direction == 1  # a filling pump
    assert STOP_M - 0.1 < rule.stop <= STOP_M and START_M <= rule.start < START_M + 0.1
    assert "S_PU1 (fills on L_T1) stops at" in detector.describe()[0]
    # A fresh normal run may overshoot the year's extremes by a hair (the ensemble's held-out limit
    # absorbs that), never by a visible breach.
    assert detector.score(simulate(1, 600))["rule"].max() < 0.05


def test_pump_kept_running_by_a_spoofed_plc_level_is_flagged_until_it_stops(normal: np.ndarray) -> None:
    detector = _rule()
    detector.fit(normal, COLUMNS)
    attacked = simulate(1, 300, spoof_plc_from=100)
    score = detector.score(attacked)["rule"]
    over = attacked[:, LEVEL] > detector.rules[0].stop
    first = int(np.flatnonzero(over & (attacked[:, STATUS] == 1.0))[0])
    assert np.all(score[:first] == 0.0)
    # Remembered for the whole run: the pump never stops again, so every later hour is flagged.
    assert np.all(score[first:] > 0.0)
    expected = detector.expected(attacked)
    assert expected is not None and expected[first, STATUS] == 0.0  # the rule says: stopped
    contrib = detector.contributions(attacked, "rule")[first]
    assert contrib[STATUS] > 0 and contrib[LEVEL] > 0 and contrib[FLOW] == 0


def test_draining_pump_rule_is_the_mirror_image(normal: np.ndarray) -> None:
    mirrored = normal.copy()
    mirrored[:, LEVEL] = 6.0 - mirrored[:, LEVEL]  # the same switching, as a drain pump sees it
    detector = _rule()
    detector.fit(mirrored, COLUMNS)
    (rule,) = detector.rules
    assert rule.direction == -1
    attacked = simulate(1, 300, spoof_plc_from=100)
    attacked[:, LEVEL] = 6.0 - attacked[:, LEVEL]
    assert detector.score(attacked)["rule"][-50:].min() > 0


def test_status_with_too_few_switches_gets_no_rule(normal: np.ndarray) -> None:
    detector = ControlRuleDetector(levels=["L_T1"], min_switches=10_000)
    detector.fit(normal, COLUMNS)
    assert detector.rules == ()
    assert np.all(detector.score(simulate(1, 300, spoof_plc_from=100))["rule"] == 0.0)


def test_mass_balance_learns_the_tank_area_from_the_flows(normal: np.ndarray) -> None:
    detector = _balance()
    detector.fit(normal, COLUMNS)
    clean = detector.score(simulate(4, 500))["balance"]
    assert np.percentile(clean, 99) < 4.0
    # A flow meter that reports the pump running while it is stopped: the level falls instead.
    spoofed = simulate(4, 500)
    stopped = np.flatnonzero(spoofed[:, STATUS] == 0.0)
    spoofed[stopped, FLOW] = 100.0
    spoofed[stopped, STATUS] = 1.0
    score = detector.score(spoofed)["balance"]
    assert np.median(score[stopped[stopped > 0] + 1]) > 10.0
    expected = detector.expected(spoofed)
    assert expected is not None and np.all(np.isnan(expected[:, FLOW]))


def test_replayed_level_breaks_the_mass_balance(normal: np.ndarray) -> None:
    detector = _balance()
    detector.fit(normal, COLUMNS)
    stream = simulate(5, 400)
    replayed = stream.copy()
    replayed[200:300, LEVEL] = stream[50:150, LEVEL]  # the level trace of another day
    score, clean = detector.score(replayed)["balance"], detector.score(stream)["balance"]
    assert np.mean(score[200:300] > 5.0) > 0.3
    assert np.mean(clean[200:300] > 5.0) == 0.0


def test_missing_named_variable_is_refused(normal: np.ndarray) -> None:
    with pytest.raises(InputError, match="no level variable"):
        ControlRuleDetector(levels=["L_T9"]).fit(normal, COLUMNS)
    with pytest.raises(InputError, match="no variable"):
        MassBalanceDetector(levels=["L_T1"], flows=["F_PU9"]).fit(normal, COLUMNS)
    with pytest.raises(ValueError, match="level variables"):
        ControlRuleDetector(levels=[])


# --- the tabular contract, on data that has pumps and tanks ---


@pytest.mark.parametrize("name", sorted(HYDRAULIC))
def test_same_seed_and_data_give_identical_scores(name: str, normal: np.ndarray) -> None:
    a, b = HYDRAULIC[name](), HYDRAULIC[name]()
    a.fit(normal, COLUMNS)
    b.fit(normal, COLUMNS)
    test = simulate(6, 200, spoof_plc_from=80)
    np.testing.assert_array_equal(a.score(test)[name], b.score(test)[name])


@pytest.mark.parametrize("name", sorted(HYDRAULIC))
def test_score_of_an_hour_does_not_change_when_later_hours_change(name: str, normal: np.ndarray) -> None:
    detector: TabularDetector = HYDRAULIC[name]()
    detector.fit(normal, COLUMNS)
    test = simulate(7, 200)
    altered = test.copy()
    altered[100:, LEVEL] += 2.0
    altered[100:, FLOW] = 0.0
    full, changed, prefix = detector.score(test), detector.score(altered), detector.score(test[:100])
    np.testing.assert_array_equal(full[name][:100], changed[name][:100])
    np.testing.assert_array_equal(full[name][:100], prefix[name])
    assert not np.array_equal(full[name][100:], changed[name][100:])


@pytest.mark.parametrize("name", sorted(HYDRAULIC))
def test_missing_readings_are_tolerated(name: str, normal: np.ndarray) -> None:
    detector: TabularDetector = HYDRAULIC[name]()
    training = normal.copy()
    training[::17, LEVEL] = np.nan
    training[::23, STATUS] = np.nan
    detector.fit(training, COLUMNS)
    test = simulate(8, 120, spoof_plc_from=60)
    test[10:20, :] = np.nan
    test[:, FLOW] = np.nan
    for values in detector.score(test).values():
        assert values.shape == (120,) and np.all(np.isfinite(values)) and np.all(values >= 0)
    c = detector.contributions(test, name)
    assert c.shape == test.shape and np.all(np.isfinite(c)) and np.all(c >= 0)
    with pytest.raises(ValueError, match="no statistic"):
        detector.contributions(test, "nonsense")


@pytest.mark.parametrize("name", sorted(HYDRAULIC))
def test_save_load_round_trip_scores_identically(name: str, normal: np.ndarray, tmp_path: Path) -> None:
    detector: TabularDetector = HYDRAULIC[name]()
    detector.fit(normal, COLUMNS)
    digest = save_tabular_detector(detector, tmp_path / "det.json")
    loaded = load_tabular_detector(tmp_path / "det.json", expected_digest=digest)
    assert isinstance(loaded, type(detector))
    test = simulate(9, 200, spoof_plc_from=50)
    np.testing.assert_array_equal(detector.score(test)[name], loaded.score(test)[name])


def test_unfitted_hydraulic_detectors_say_so() -> None:
    for make in HYDRAULIC.values():
        with pytest.raises(RuntimeError, match="not fitted"):
            make().score(simulate(0, 10))


def test_rule_naming_a_column_outside_the_detector_is_refused(normal: np.ndarray) -> None:
    detector = _rule()
    detector.fit(normal, COLUMNS)
    meta, arrays = detector.state()
    bad = arrays["rules"].copy()
    bad[0, 0] = len(COLUMNS) + 3
    with pytest.raises(ValueError, match="outside"):
        ControlRuleDetector.from_state(meta, {"rules": bad})


def test_ensemble_with_hydraulic_members_flags_the_spoofed_plc_and_round_trips(
    normal: np.ndarray, tmp_path: Path
) -> None:
    ensemble = Ensemble(
        [TagPredictorDetector(seed=3), FrozenValueDetector(seed=3), _rule(), _balance()],
        false_alarm_rate=0.01,
    )
    ensemble.fit(normal, COLUMNS)
    attacked = simulate(1, 300, spoof_plc_from=100)
    decision = ensemble.decide(attacked)
    assert decision.flags[-100:].mean() > 0.9
    assert decision.flags[:100].mean() < 0.05
    why = ensemble.explain(attacked, 250)
    assert why.statistic == "rule.rule" and {t for t, _ in why.contributions} == {"S_PU1", "L_T1"}
    digest = save_tabular_detector(ensemble, tmp_path / "ens.json")
    loaded = load_tabular_detector(tmp_path / "ens.json", expected_digest=digest)
    assert isinstance(loaded, Ensemble)
    np.testing.assert_array_equal(loaded.decide(attacked).score, decision.score)

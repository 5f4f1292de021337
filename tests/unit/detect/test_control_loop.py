"""Control-loop checks on small twin batches: the controller law holds exactly on clean batches and
breaks on a falsified reading or a shown-but-unused setpoint; an in-loop spoof's onset is a step the
vessel cannot make; a stuck actuator is reported as a process fault, a spoofed reading as an attack."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aseptic.campaign import Bias, Geometric, InLoopPlant, SetpointChange, apply_attacks
from aseptic.clock import SimClock
from aseptic.detect import ControlLoopDetector, Engine, Finding
from aseptic.detect._control_law import setpoint_moved
from aseptic.detect._explain import classify_cause
from aseptic.errors import InputError
from aseptic.twin import simulate_batches

Sample = dict[str, float]
DURATION_H = 60.0
START_H = 45.0


def _samples(seed: int, n: int) -> list[list[Sample]]:
    out = []
    for b in simulate_batches(n, seed, duration_h=DURATION_H, paa_control="true"):
        names = list(b.tags)
        out.append([{k: float(b.tags[k][i]) for k in names} for i in range(b.time_h.size)])
    return out


@pytest.fixture(scope="module")
def train() -> list[list[Sample]]:
    return _samples(0, 5)


@pytest.fixture(scope="module")
def fitted(train: list[list[Sample]]) -> ControlLoopDetector:
    detector = ControlLoopDetector()
    detector.fit(train)
    return detector


@pytest.fixture(scope="module")
def clean() -> list[Sample]:
    return _samples(700, 1)[0]


def _scores(detector: ControlLoopDetector, batch: list[Sample]) -> list[tuple[float, float]]:
    detector.reset()
    out = []
    for x in batch:
        law, step = detector.score_one(x)
        out.append((law.value, step.value))
    return out


def _findings(detector: ControlLoopDetector, batch: list[Sample]) -> list[Finding]:
    found: list[Finding] = []
    engine = Engine([detector], found.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("test")
    for x in batch:
        engine.push_sample(x)
    return found


def test_scores_are_deterministic_causal_and_finite(
    train: list[list[Sample]], fitted: ControlLoopDetector, clean: list[Sample]
) -> None:
    other = ControlLoopDetector()
    other.fit(train)
    full = _scores(fitted, clean)
    assert full == _scores(other, clean)
    assert full[:100] == _scores(fitted, clean[:100])
    assert all(math.isfinite(v) for pair in full for v in pair)


def test_clean_batch_raises_no_finding(fitted: ControlLoopDetector, clean: list[Sample]) -> None:
    assert _findings(fitted, clean) == []


def test_missing_tags_are_tolerated(fitted: ControlLoopDetector, clean: list[Sample]) -> None:
    fitted.reset()
    for x in clean[:50]:
        law, step = fitted.score_one({k: v for k, v in x.items() if k != "ph"})
        assert math.isfinite(law.value) and math.isfinite(step.value)


def test_reporting_path_geometric_onset_breaks_the_controller_law(
    fitted: ControlLoopDetector, clean: list[Sample]
) -> None:
    # Cardenas et al.'s geometric attack: 0.9 ** 10 x 0.3 K = 0.1 K at its start.
    attack = [Geometric("temperature_k", START_H, 10.0, offset_end=0.3, alpha_per_h=0.9)]
    found = _findings(fitted, [apply_attacks(attack, x["batch_time_h"], x) for x in clean])
    law = [f for f in found if f.detector == "control.law"]
    assert law and START_H <= law[0].batch_time_h <= START_H + 1.0
    assert law[0].cause == "attack" and law[0].tags[0] == "temperature_k"


def test_setpoint_shown_but_not_used_breaks_the_controller_law(
    fitted: ControlLoopDetector, clean: list[Sample]
) -> None:
    shown = [{**x, "ph_sp": x["ph_sp"] + 0.1} if x["batch_time_h"] >= START_H else x for x in clean]
    found = [f for f in _findings(fitted, shown) if f.detector == "control.law"]
    assert found and found[0].tags[0] == "ph_sp" and found[0].technique == "T0836"


def test_in_loop_bias_onset_is_a_step_the_vessel_cannot_make(fitted: ControlLoopDetector) -> None:
    plant = InLoopPlant(
        701, [Bias("temperature_k", START_H, 10.0, 1.5)], duration_h=DURATION_H, paa_control="true"
    )
    batch = []
    while not plant.finished:
        batch.append(plant.step())
    found = [f for f in _findings(fitted, batch) if START_H <= f.batch_time_h <= START_H + 10.0]
    assert found and found[0].detector == "control.step" and found[0].batch_time_h <= START_H + 1.0
    assert found[0].cause == "attack"


def test_in_loop_setpoint_change_keeps_the_law(fitted: ControlLoopDetector) -> None:
    # The controller really runs on the new setpoint and shows it: the law holds (MSPC sees the
    # process move); only the step check may see the loop's answer.
    plant = InLoopPlant(
        702, [SetpointChange("ph_sp", START_H, 10.0, 0.1)], duration_h=DURATION_H, paa_control="true"
    )
    batch = []
    while not plant.finished:
        batch.append(plant.step())
    assert not [f for f in _findings(fitted, batch) if f.detector == "control.law"]


def test_stuck_cooling_valve_is_a_process_fault(fitted: ControlLoopDetector, clean: list[Sample]) -> None:
    stuck = [
        {**x, "cooling_water_l_per_h": 2.0} if START_H <= x["batch_time_h"] <= START_H + 4.0 else x
        for x in clean
    ]
    found = [f for f in _findings(fitted, stuck) if f.detector == "control.law"]
    assert found and found[0].tags[0] == "cooling_water_l_per_h"
    assert (found[0].cause, found[0].process_fault) == ("process fault", "COOLANT_FLOW_DROP")


def test_control_findings_name_a_fault_only_for_an_actuator() -> None:
    assert classify_cause("control.step", ("aeration_m3_per_min", "ph"), (), (), {}) == (
        "process fault",
        "AERATION_DROP",
    )
    assert classify_cause("control.step", ("ph",), (), (), {}) == ("attack", None)


def test_fit_refuses_batches_without_the_loops(train: list[list[Sample]]) -> None:
    with pytest.raises(InputError, match="control-loop checks need"):
        ControlLoopDetector().fit([[{k: v for k, v in x.items() if k != "ph"} for x in b] for b in train])
    with pytest.raises(InputError, match="at least 5 samples"):
        ControlLoopDetector().fit([])


def test_finding_while_a_utility_is_off_its_recipe_is_that_process_fault() -> None:
    def recipe(tag: str) -> float:
        return {"aeration_m3_per_min": 70.0, "head_pressure_bar": 0.6}.get(tag, math.nan)

    dropped = {"aeration_m3_per_min": 20.0, "head_pressure_bar": 0.6}
    assert classify_cause("mspc.spe", ("offgas_co2_pct",), (), (), dropped, expect=recipe) == (
        "process fault",
        "AERATION_DROP",
    )
    raised = {"aeration_m3_per_min": 120.0, "head_pressure_bar": 0.6}  # not the fault's direction
    assert classify_cause("mspc.spe", ("offgas_co2_pct",), (), (), raised, expect=recipe) == ("attack", None)
    on_recipe = {"aeration_m3_per_min": 70.0, "head_pressure_bar": 0.61}
    assert classify_cause("mspc.spe", ("offgas_co2_pct",), (), (), on_recipe, expect=recipe) == (
        "attack",
        None,
    )
    # Evidence against the reading itself stays an attack, whatever the utilities do.
    assert classify_cause("replay.match", ("ph",), (), (), dropped, expect=recipe) == ("attack", None)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 6.5])),
        min_size=1,
        max_size=4,
    )
)
def test_setpoint_moved_is_numpys_nan_range_over_the_history(setpoints: list[float]) -> None:
    """The Python-float form of the check equals ``nanmax - nanmin > 0`` of the history (all NaN: no)."""
    import warnings

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = bool(len(setpoints) >= 2 and np.nanmax(setpoints) - np.nanmin(setpoints) > 0)
    assert setpoint_moved(setpoints) is expected

"""The check instruments: a second temperature element and pH probe beside the loops' own (ADR 0400)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from aseptic.twin import TAGS_BY_NAME, simulate_batches
from aseptic.twin import _kinetics as k
from aseptic.twin._engine import BatchEngine
from aseptic.twin._sensors import CHECK_ERRORS, CHECK_TAGS
from aseptic.twin._variation import draw_batch

pytestmark = pytest.mark.requirement("ASE-TWIN")


def test_the_catalogue_names_each_check_element_and_the_loop_tag_it_checks() -> None:
    assert CHECK_TAGS == ("temperature_2_k", "ph_2")
    assert TAGS_BY_NAME["temperature_2_k"].redundant_of == "temperature_k"
    assert TAGS_BY_NAME["ph_2"].redundant_of == "ph"
    # Its own device: an attacker in TIC-101 or the loop's pH analyser does not also hold it.
    assert TAGS_BY_NAME["temperature_2_k"].device not in {"TIC-101", "AT-202"}
    assert set(CHECK_ERRORS) == set(CHECK_TAGS)


def test_adding_the_check_elements_changed_no_other_draw() -> None:
    """Values of seed 30001 pinned before the check instruments existed (the bench stays comparable)."""
    b = simulate_batches(1, 30001, duration_h=20.0, paa_control="true")[0]
    assert b.tags["temperature_k"][50] == 298.0867621261077
    assert b.tags["ph"][99] == 6.493538806026566
    assert b.tags["cooling_water_l_per_h"][99] == 250.3034205601828
    assert b.tags["base_flow_l_per_h"][50] == 39.26012657278673
    assert b.tags["offgas_co2_pct"][99] == 0.6884087732696542


def test_a_check_element_reads_the_true_state_through_its_own_calibration_error() -> None:
    b = simulate_batches(1, 30002, duration_h=40.0, paa_control="true")[0]
    draw = draw_batch(30002, sample_time_h=0.2, initial_volume_l=58_000.0, duration_h=40.0)
    n = b.time_h.size
    error = b.tags["temperature_2_k"] - b.states[:, k.T] - draw.check_error[:n, 0]
    assert 0.008 < error.std() < 0.012  # what is left is the element's noise (0.01 K)
    ph_error = b.tags["ph_2"] + np.log10(b.states[:, k.H]) - draw.check_error[:n, 1]
    assert 0.0015 < ph_error.std() < 0.0025
    # The loop element and the check element disagree by about the calibration error.
    gap = b.tags["temperature_k"] - b.tags["temperature_2_k"]
    assert abs(np.median(gap + draw.check_error[:n, 0])) < 0.005


def test_check_errors_are_per_batch_and_deterministic() -> None:
    one = draw_batch(5, sample_time_h=0.2, initial_volume_l=58_000.0, duration_h=30.0).check_error
    again = draw_batch(5, sample_time_h=0.2, initial_volume_l=58_000.0, duration_h=30.0).check_error
    other = draw_batch(6, sample_time_h=0.2, initial_volume_l=58_000.0, duration_h=30.0).check_error
    assert np.array_equal(one, again)
    assert not np.allclose(one, other)


def test_a_loop_sensor_fault_does_not_reach_the_check_element() -> None:
    clean = simulate_batches(1, 30003, duration_h=170.0, paa_control="true")[0]
    drifted = simulate_batches(1, 30003, duration_h=170.0, faults=[7], paa_control="true")[0]
    late = clean.time_h > 150.0
    # Fault 7 ramps the loop element's bias up to 0.4 K; the loop holds the *reading*, so the true
    # temperature (and the check element) moves the other way by about the bias.
    loop_gap = drifted.tags["temperature_k"][late] - drifted.tags["temperature_2_k"][late]
    clean_gap = clean.tags["temperature_k"][late] - clean.tags["temperature_2_k"][late]
    assert np.median(loop_gap - clean_gap) > 0.2


def test_an_attacker_on_the_loop_reading_does_not_change_the_check_element() -> None:
    def spoof(t_h: float, seen: Mapping[str, float]) -> Mapping[str, float]:
        return {"temperature_k": seen["temperature_k"] + 0.5} if t_h >= 10.0 else {}

    draws = [draw_batch(30004, sample_time_h=0.2, initial_volume_l=58_000.0, duration_h=20.0)] * 2
    engine = BatchEngine(
        draws,
        [(), ()],
        sample_time_h=0.2,
        setpoints=(6.5, 298.0, 1200.0),
        paa_control="true",
        tampers=[None, spoof],
    )
    gaps = []
    while engine.active.any():
        tags = engine.step()
        gaps.append(tags["temperature_k"] - tags["temperature_2_k"])
    gap = np.array(gaps)[60:]  # from 12 h on: the attack is on, the loop has followed it
    assert np.median(gap[:, 1] - gap[:, 0]) > 0.45

"""Surge, geometric, freeze and setpoint attacks: exact shapes, their windows, and the in-loop plant."""

from __future__ import annotations

import math

import pytest

from aseptic.campaign import Bias, Freeze, Geometric, InLoopPlant, SetpointChange, Surge
from aseptic.errors import InputError

STEP_H = 0.2


def _sample(t: float) -> dict[str, float]:
    return {
        "batch_time_h": t,
        "temperature_k": 298.0 + 0.01 * math.sin(t),
        "ph": 6.5 + 0.001 * t,
        "ph_sp": 6.5,
    }


def _times(until_h: float) -> list[float]:
    return [round(i * STEP_H, 10) for i in range(round(until_h / STEP_H) + 1)]


def test_surge_jumps_then_settles_only_inside_the_window() -> None:
    surge = Surge("ph", start_h=4.0, duration_h=6.0, peak=0.3, settle=0.05, surge_h=1.0)
    for t in _times(12.0):
        offset = surge.apply(t, _sample(t))["ph"] - _sample(t)["ph"]
        expected = (0.3 if t < 5.0 else 0.05) if 4.0 <= t < 10.0 else 0.0
        assert offset == pytest.approx(expected, abs=1e-12)


def test_geometric_offset_grows_toward_the_end() -> None:
    geo = Geometric("temperature_k", start_h=10.0, duration_h=10.0, offset_end=1.0, alpha_per_h=0.7)
    offsets = [geo.offset_at(t) for t in _times(25.0)]
    inside = [o for t, o in zip(_times(25.0), offsets, strict=True) if 10.0 <= t < 20.0]
    assert inside == sorted(inside) and inside[0] == pytest.approx(0.7**10) and inside[-1] < 1.0
    assert all(o == 0.0 for t, o in zip(_times(25.0), offsets, strict=True) if not 10.0 <= t < 20.0)


def test_freeze_holds_the_last_value_before_the_window() -> None:
    freeze = Freeze("temperature_k", start_h=3.0, duration_h=2.0)
    shown = {t: freeze.apply(t, _sample(t))["temperature_k"] for t in _times(6.0)}
    held = _sample(2.8)["temperature_k"]
    for t, value in shown.items():
        assert value == (held if 3.0 <= t < 5.0 else _sample(t)["temperature_k"])
    assert freeze.techniques == ("T0815",)


def test_setpoint_change_shows_or_hides_the_new_setpoint() -> None:
    shown = SetpointChange("ph_sp", start_h=1.0, duration_h=1.0, offset=0.2)
    hidden = SetpointChange("ph_sp", start_h=1.0, duration_h=1.0, offset=0.2, hidden=True)
    assert shown.apply(1.2, _sample(1.2))["ph_sp"] == pytest.approx(6.7)
    assert hidden.apply(1.2, _sample(1.2))["ph_sp"] == 6.5
    assert shown.setpoint_at(1.2, 6.5) == pytest.approx(6.7) and shown.setpoint_at(2.2, 6.5) == 6.5
    assert shown.techniques[0] == "T0836"


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: SetpointChange("ph", 1.0, 1.0, 0.1), "not a setpoint"),
        (lambda: Geometric("ph", 1.0, 1.0, 0.1, alpha_per_h=1.5), "alpha_per_h"),
        (lambda: Surge("ph", 1.0, 1.0, math.nan, 0.0, 1.0), "peak"),
        (lambda: Surge("ph", 1.0, 1.0, 0.1, 0.0, -1.0), "surge_h"),
        (lambda: Freeze("no_such_tag", 1.0, 1.0), "unknown tag"),
    ],
)
def test_bad_attack_parameters_are_refused(factory: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        factory()  # type: ignore[operator]


def test_in_loop_setpoint_change_moves_the_true_process_and_can_hide() -> None:
    attack = SetpointChange("ph_sp", start_h=2.0, duration_h=4.0, offset=0.3, hidden=True)
    attacked = InLoopPlant(3, [attack], duration_h=8.0, paa_control="true")
    clean = InLoopPlant(3, [], duration_h=8.0, paa_control="true")
    rows = [(attacked.step(), clean.step()) for _ in range(round(8.0 / STEP_H))]
    assert all(a["ph_sp"] == c["ph_sp"] for a, c in rows)  # hidden: the view keeps the recipe value
    late = [a["ph"] - c["ph"] for a, c in rows if 4.0 <= a["batch_time_h"] < 6.0]
    assert min(late) > 0.1  # the honest pH probe shows the process driven to the new setpoint
    assert attacked.finished


def test_in_loop_bias_is_what_the_controller_and_the_view_see() -> None:
    attack = Bias("temperature_k", start_h=2.0, duration_h=4.0, offset=0.5)
    attacked = InLoopPlant(3, [attack], duration_h=8.0, paa_control="true")
    clean = InLoopPlant(3, [], duration_h=8.0, paa_control="true")
    rows = [(attacked.step(), clean.step()) for _ in range(round(5.8 / STEP_H))]
    onset = next(i for i, (a, _) in enumerate(rows) if a["batch_time_h"] >= 2.0 - 1e-9)
    assert rows[onset][0]["temperature_k"] - rows[onset][1]["temperature_k"] > 0.3  # the view jumps
    true_gap = attacked.plant.true_state()["temperature_k"] - clean.plant.true_state()["temperature_k"]
    assert true_gap < -0.3  # the loop has cooled the true broth to make the false value look right
    assert abs(rows[-1][0]["temperature_k"] - rows[-1][1]["temperature_k"]) < 0.1  # ... and the view normal

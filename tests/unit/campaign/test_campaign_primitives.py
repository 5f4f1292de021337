"""Attack primitives: bias, ramp and replay do exactly what they say, and only in their window."""

from __future__ import annotations

import math

import pytest

import aseptic.campaign
from aseptic.campaign import REPORTING_TECHNIQUES, Bias, Ramp, Replay, apply_attacks
from aseptic.errors import InputError

STEP_H = 0.2


def _sample(t: float) -> dict[str, float]:
    """A deterministic, non-repeating signal per tag."""
    return {"batch_time_h": t, "temperature_k": 298.0 + 0.01 * math.sin(t), "ph": 6.5 + 0.001 * t}


def _times(until_h: float) -> list[float]:
    return [round(i * STEP_H, 10) for i in range(round(until_h / STEP_H) + 1)]


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.campaign.__all__) == sorted(
        [
            "ATLAS_VERSION",
            "CAMPAIGN_SEED",
            "DETECTION_QUORUM",
            "DETECTOR_FAMILIES",
            "FAMILY_STATISTICS",
            "ICS_ATTACK_VERSION",
            "PRIMITIVES",
            "REPORTING_TECHNIQUES",
            "Attack",
            "Bias",
            "Expectation",
            "Freeze",
            "Geometric",
            "InLoopPlant",
            "ParamSpec",
            "Preconditions",
            "PrimitiveSpec",
            "Ramp",
            "Replay",
            "Scenario",
            "SetpointChange",
            "Step",
            "Surge",
            "TamperedView",
            "Technique",
            "apply_attacks",
            "build_attack",
            "builtin_scenario_dir",
            "load_library",
            "load_scenario",
            "not_executable_reason",
            "parse_scenario",
            "render_html",
            "run_campaign",
            "scenario_schema",
            "technique",
            "techniques",
            "write_campaign",
            "DETECTION_WINDOW_H",
            "SCORE_WEIGHTS",
            "MissedTechnique",
            "ResilienceScore",
            "newly_missed",
            "resilience_findings",
            "rotate",
            "score_results",
            "SCHEDULER_IDENTITY",
            "CampaignScheduler",
            "SchedulePlan",
            "run_cycle",
            "run_shadow_campaign",
            "schedulable",
            "SCHEDULE_DB",
            "CycleRecord",
            "ScheduleStore",
            "result_digest",
        ]
    )


def test_bias_adds_offset_only_inside_the_window() -> None:
    bias = Bias("temperature_k", start_h=10.0, duration_h=5.0, offset=0.5)
    for t in _times(20.0):
        clean = _sample(t)
        out = bias.apply(t, clean)
        inside = 10.0 <= t < 15.0
        assert out["temperature_k"] == pytest.approx(
            clean["temperature_k"] + (0.5 if inside else 0.0), abs=1e-12
        )
        assert out["ph"] == clean["ph"]
        assert clean == _sample(t)  # input not mutated


def test_ramp_grows_linearly_from_the_start() -> None:
    ramp = Ramp("ph", start_h=4.0, duration_h=6.0, slope_per_h=0.02)
    offsets = [ramp.apply(t, _sample(t))["ph"] - _sample(t)["ph"] for t in _times(12.0)]
    for t, offset in zip(_times(12.0), offsets, strict=True):
        expected = 0.02 * (t - 4.0) if 4.0 <= t < 10.0 else 0.0
        assert offset == pytest.approx(expected, abs=1e-12)


def test_replay_reproduces_the_earlier_segment_exactly() -> None:
    replay = Replay("temperature_k", start_h=30.0, duration_h=8.0, record_from_h=10.0)
    reported = {t: replay.apply(t, _sample(t))["temperature_k"] for t in _times(45.0)}
    assert replay.recorded == 40
    for t in _times(45.0):
        if 30.0 <= t < 38.0:
            assert reported[t] == _sample(round(t - 20.0, 10))["temperature_k"]
        else:
            assert reported[t] == _sample(t)["temperature_k"]


def test_replay_before_recording_lets_values_through() -> None:
    replay = Replay("ph", start_h=30.0, duration_h=5.0, record_from_h=10.0)
    assert replay.apply(31.0, _sample(31.0)) == _sample(31.0)  # joined late: nothing recorded


def test_attacks_compose_in_order() -> None:
    attacks = [Bias("ph", 0.0, 10.0, 0.1), Ramp("ph", 0.0, 10.0, 0.01)]
    out = apply_attacks(attacks, 5.0, _sample(5.0))
    assert out["ph"] == pytest.approx(_sample(5.0)["ph"] + 0.1 + 0.05)


def test_primitives_carry_reporting_techniques() -> None:
    assert REPORTING_TECHNIQUES == ("T0856", "T0832")
    assert Bias("ph", 0, 1, 0.1).techniques == REPORTING_TECHNIQUES


def test_unknown_tag_is_refused_with_the_known_tags() -> None:
    with pytest.raises(InputError, match="unknown tag 'temprature'") as err:
        Bias("temprature", 1.0, 1.0, 0.5)
    assert err.value.hint is not None and "temperature_k" in err.value.hint


@pytest.mark.parametrize(
    "build",
    [
        lambda: Bias("ph", 1.0, -1.0, 0.1),
        lambda: Ramp("ph", -1.0, 1.0, 0.1),
        lambda: Bias("ph", 1.0, math.inf, 0.1),
        lambda: Bias("ph", 1.0, 1.0, math.nan),
        lambda: Ramp("ph", 1.0, 1.0, math.inf),
        lambda: Replay("ph", 10.0, 5.0, record_from_h=8.0),  # recording overlaps the attack
        lambda: Replay("ph", 10.0, 5.0, record_from_h=-1.0),
        lambda: Bias("batch_time_h", 1.0, 1.0, 5.0),  # the alignment key is not a measurement
    ],
)
def test_invalid_parameters_are_refused(build: object) -> None:
    with pytest.raises(InputError):
        build()  # type: ignore[operator]


def test_bias_in_the_loop_moves_the_true_temperature_not_the_reported_one() -> None:
    """Given to the twin as a measurement tamper, the controller hides the bias in the process."""
    from aseptic.twin import Plant

    clean = Plant(30000, duration_h=12.0)
    attacked = Plant(30000, duration_h=12.0, measurement_tamper=Bias("temperature_k", 2.0, 20.0, 0.5).apply)
    while not clean.finished:
        reported_clean, reported_attacked = clean.step(), attacked.step()
    true_gap = attacked.true_state()["temperature_k"] - clean.true_state()["temperature_k"]
    assert true_gap == pytest.approx(-0.5, abs=0.1)  # the broth is 0.5 K colder
    assert abs(reported_attacked["temperature_k"] - reported_clean["temperature_k"]) < 0.1


def test_tampered_view_falsifies_what_is_published_not_what_the_controller_sees() -> None:
    from aseptic.campaign import TamperedView
    from aseptic.twin import Plant

    true_plant = Plant(3, duration_h=20.0, paa_control="true")
    view = TamperedView(Plant(3, duration_h=20.0, paa_control="true"), [Bias("ph", 10.0, 5.0, 0.3)])
    while not view.finished:
        true_row, shown = true_plant.step(), view.step()
        inside = 10.0 <= view.time_h < 15.0
        assert shown["ph"] == (true_row["ph"] + 0.3 if inside else true_row["ph"])
        assert shown["base_flow_l_per_h"] == true_row["base_flow_l_per_h"]  # the loop saw the truth
    assert view.firmware() == true_plant.firmware()

"""``aseptic bench twin``: scenarios build the right primitives, bad arguments are refused, the
summary counts detections, false alarms and process-fault labels correctly."""

from __future__ import annotations

from pathlib import Path

import pytest

import aseptic.bench
from aseptic.bench import run_twin_bench
from aseptic.bench._twin import _summarise, _Task
from aseptic.bench._twin_scenarios import SCENARIOS, Scenario, build_attacks
from aseptic.campaign import Bias, Freeze, Geometric, Ramp, Replay, SetpointChange, Surge
from aseptic.cli._bench_twin import render_table
from aseptic.errors import ConfigError


def test_public_api_is_pinned() -> None:
    assert {"GROUPS", "run_twin_bench"} <= set(aseptic.bench.__all__)


def test_every_attack_kind_is_measured_on_both_paths() -> None:
    kinds = {(s.kind, s.placement) for s in SCENARIOS}
    for kind in ("bias", "ramp", "surge", "geometric", "replay", "stale", "setpoint"):
        assert (kind, "reporting") in kinds and (kind, "in-loop") in kinds
    expected = {
        "bias": Bias,
        "ramp": Ramp,
        "surge": Surge,
        "geometric": Geometric,
        "replay": Replay,
        "stale": Freeze,
        "setpoint": SetpointChange,
    }
    for scenario in SCENARIOS:
        for tag in ("temperature_k", "ph"):
            (attack,) = build_attacks(scenario, tag)
            assert isinstance(attack, expected[scenario.kind])
            assert (attack.start_h, attack.end_h) == (100.0, 140.0)


@pytest.mark.parametrize(("batches", "train"), [(0, 20), (5, 2)])
def test_bad_arguments_are_refused(batches: int, train: int, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bench twin needs"):
        run_twin_bench(batches, tmp_path, train_batches=train)


def _result(task: _Task, findings: list[tuple[object, ...]], episodes: int = 0) -> dict[str, object]:
    groups = ("mspc", "stale", "replay", "physics", "twin", "control", "redundancy", "ensemble")
    return {
        "task": task,
        "samples": 1000,
        "hours": 200.0,
        "episodes": dict.fromkeys(groups, episodes),
        "findings": findings,
    }


def test_summary_counts_detections_false_alarms_and_fault_labels() -> None:
    bias = Scenario("bias", "in-loop")
    results = [
        _result(_Task("clean", 0), [], episodes=1),
        _result(_Task("clean", 1), []),
        _result(
            _Task("attack", 0, scenario=bias),
            [
                (90.0, "mspc", "mspc.t2", (), "T0832", "attack", None),
                (100.4, "twin", "twin.step", (), "T0856", "attack", None),
            ],
        ),
        _result(
            _Task("attack", 1, scenario=bias), [(150.0, "twin", "twin.step", (), "T0856", "attack", None)]
        ),
        _result(
            _Task("fault", 0, fault=4),
            [(80.0, "mspc", "mspc.t2", (), "T0831", "process fault", "BASE_FLOW_DROP")],
        ),
    ]
    report = _summarise(results, batches=2, train_batches=20)
    assert report["clean"]["fa_episodes_per_100h"]["ensemble"] == pytest.approx(0.25)  # 1 episode in 400 h
    row = next(s for s in report["scenarios"] if s["scenario"] == "in-loop: bias")
    assert row["groups"]["twin"] == {"detected": 1, "rate": 0.5, "median_ttd_h": 0.4}
    assert row["groups"]["mspc"]["detected"] == 0  # a Finding before the window is not a detection
    fault = next(f for f in report["process_faults"] if f["fault"] == 4)
    assert fault["reported_as_process_fault"] == 1 and fault["reported_as_attack"] == 0
    assert fault["first_finding_process_fault"] == 1 and fault["named_fault_correct"] == 1
    table = render_table(report)
    assert "in-loop: bias" in table and "1/2 0.4h" in table

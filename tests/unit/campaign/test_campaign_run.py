"""The campaign runner end to end at tiny scale: short batches, two batches per scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from aseptic.campaign import Scenario, parse_scenario, run_campaign
from aseptic.cli.main import app

DURATION_H = 30.0


def _scenario(sid: str, steps: list[dict[str, Any]], expected: list[dict[str, Any]]) -> Scenario:
    return parse_scenario(
        {
            "schema_version": 1,
            "id": sid,
            "name": sid,
            "description": "test scenario",
            "techniques": sorted({t for s in steps for t in s.pop("techniques")}),
            "preconditions": {"after_h": 5, "batch_duration_h": DURATION_H},
            "steps": steps,
            "expected": expected,
            "impact": ["titre_loss"],
        },
        source=f"{sid}.yaml",
    )


def _bias_loop() -> Scenario:
    step = {
        "primitive": "sensor_bias",
        "at_h": 12,
        "duration_h": 12,
        "params": {"tag": "ph", "offset": 0.3, "path": "loop"},
        "techniques": ["T0856"],
    }
    return _scenario("ph-bias-loop-test", [step], [{"detector": "physics"}, {"detector": "mspc"}])


def _firmware() -> Scenario:
    step = {
        "primitive": "firmware_swap",
        "at_h": 12,
        "params": {"device": "ph-probe"},
        "techniques": ["T0839"],
    }
    return _scenario("firmware-test", [step], [{"detector": "attestation", "within_h": 0.5}])


def test_campaign_runs_and_scores_process_and_platform_scenarios(tmp_path: Path) -> None:
    report = run_campaign(
        [_bias_loop(), _firmware()],
        batches=2,
        train_batches=3,
        workers=1,
        train_duration_h=DURATION_H,
        out=tmp_path,
    )
    assert [s["id"] for s in report["scenarios"]] == ["ph-bias-loop-test", "firmware-test"]
    assert report["not_executed"] == []
    row = report["scenarios"][0]
    assert set(row) >= {
        "id",
        "name",
        "techniques",
        "batches",
        "detected",
        "detection_rate",
        "median_ttd_h",
        "p95_ttd_h",
        "false_alarms_per_100h",
        "impact",
    }
    assert row["batches"] == 2 and row["techniques"] == ["T0856"]
    assert isinstance(row["detected"], bool) and 0.0 <= row["detection_rate"] <= 1.0
    assert row["detected"] == (row["detection_rate"] >= 0.95)
    assert set(row["impact"]) >= {"titre_loss_g_per_l", "harvest_kg_loss", "minutes_out_of_spec", "qa_reject"}
    assert row["false_alarms_per_100h"] is not None and row["false_alarms_per_100h"] >= 0
    # A +0.3 pH bias inside the loop drives the true pH 0.3 down: out of its 6.2-6.8 specification.
    assert row["impact"]["minutes_out_of_spec"] > row["impact"]["clean_minutes_out_of_spec"]
    # The swapped probe firmware fails attestation at the next report (every sample, 0.2 h).
    firmware = report["scenarios"][1]
    assert firmware["detected"] is True and firmware["median_ttd_h"] is not None
    assert firmware["median_ttd_h"] <= 0.2
    assert firmware["fired"] == {"attestation.AT-202": 2}
    assert firmware["false_alarms_per_100h"] == 0.0
    coverage = report["coverage"]
    assert coverage["techniques_executed"] == 2 and "T0839" in coverage["detected"]
    assert coverage["techniques_detected"] == len(coverage["detected"])
    assert json.loads((tmp_path / "campaign.json").read_text(encoding="utf-8"))["scenarios"][0]["id"] == (
        "ph-bias-loop-test"
    )
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and "firmware-test" in page


def test_prefix_skipping_scores_exactly_like_a_full_rescore() -> None:
    """The runner resumes an attacked batch from the clean batch's engine at the first sample that
    differs; scoring the attacked batch from scratch gives the same Findings."""
    from aseptic.bench import fit_detectors
    from aseptic.campaign._plan import Group
    from aseptic.campaign._worker import _engine, _push, _result, init_worker, run_group

    detectors = fit_detectors(3, duration_h=DURATION_H)
    init_worker(detectors, None)
    scenario = _bias_loop()
    results = run_group(Group("true", DURATION_H, 50_000, (scenario,), ()))
    fleet_samples = _attacked_samples(scenario)
    state = _engine()
    _push(state, [s for s in fleet_samples if s["batch_time_h"] <= 12 + 12 + 2 + 1e-9])
    process, _ = _result(state)
    assert results[1]["findings"] == sorted((t, d) for t, d, _ in process)


def test_block_scoring_flags_and_findings_match_per_sample_scoring() -> None:
    """push_block (the runner's default) and push_sample give the same confirmed flag at every
    sample, the same Findings and the same first-confirmed sample, from a fresh engine and resumed
    from a pickled mid-batch snapshot; and a whole group scores the same both ways."""
    import pickle

    from aseptic.bench import fit_detectors
    from aseptic.campaign._plan import Group
    from aseptic.campaign._worker import _engine, _push, init_worker, run_group

    detectors = fit_detectors(3, duration_h=DURATION_H)
    init_worker(detectors, None)
    scenario = _bias_loop()
    samples = _attacked_samples(scenario)
    split = len(samples) // 3
    outcomes = []
    for block in (False, True):
        state = _engine()
        _push(state, samples[:split], block=block)
        resumed = pickle.loads(pickle.dumps(state))  # noqa: S301 - our own bytes
        _push(resumed, samples[split:], block=block)
        _, findings, flags = resumed
        outcomes.append(
            (flags, [(f.batch_time_h, f.detector, f.score, f.limit, f.tags, f.shares) for f in findings])
        )
    (sample_flags, sample_findings), (block_flags, block_findings) = outcomes
    assert len(sample_flags) == len(samples) and any(sample_flags)  # the bias is caught
    assert block_flags == sample_flags
    assert block_findings == sample_findings and sample_findings
    assert block_flags.index(True) == sample_flags.index(True)

    group = Group("true", DURATION_H, 50_000, (scenario,), ())
    init_worker(detectors, None, "sample")
    per_sample = run_group(group)
    init_worker(detectors, None, "block")
    assert run_group(group) == per_sample


def _attacked_samples(scenario: Scenario) -> list[dict[str, float]]:
    from aseptic.campaign import InLoopPlant, build_attack

    plant = InLoopPlant(
        50_000, [build_attack(scenario.steps[0], DURATION_H)], duration_h=DURATION_H, paa_control="true"
    )
    samples = []
    while not plant.finished:
        samples.append(plant.step())
    return samples


def test_cli_rejects_unknown_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["campaign", "run", "no-such-scenario", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "no-such-scenario" in result.output
    assert not (tmp_path / "campaign.json").exists()


def test_cli_reports_a_scenario_the_twin_cannot_run(tmp_path: Path) -> None:
    """The twin has no dissolved-oxygen controller: a gain change on it is listed, never scored."""
    scenario_dir = tmp_path / "mine"
    scenario_dir.mkdir()
    (scenario_dir / "do.yaml").write_text(
        """schema_version: 1
id: do-controller-detuned
name: DO controller detuned
description: a loop the twin does not have
techniques: [T0821]
steps:
  - {primitive: controller_tuning, at_h: 50, duration_h: 10, params: {loop: dissolved_o2, gain_factor: 5}}
expected:
  - {detector: mspc}
""",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["campaign", "run", "do-controller-detuned", "--scenario-dir", str(scenario_dir), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "campaign.json").read_text(encoding="utf-8"))
    assert report["scenarios"] == []
    (skipped,) = report["not_executed"]
    assert skipped["id"] == "do-controller-detuned" and "dissolved_o2" in skipped["reasons"][0]
    assert report["coverage"]["techniques_executed"] == 0


def test_the_runner_uses_only_public_names_of_the_bench() -> None:
    """The campaign imports the twin bench's detector set through ``aseptic.bench``'s public API."""
    import aseptic.bench
    import aseptic.campaign

    assert {"PAA_CONTROL", "TRAIN_SEED", "fit_detectors"} <= set(aseptic.bench.__all__)
    assert aseptic.bench.PAA_CONTROL == "true"  # the fast PAA mode the runner's process groups use
    source = Path(aseptic.campaign.__file__).parent
    assert not [p.name for p in source.glob("*.py") if "bench._twin" in p.read_text(encoding="utf-8")]

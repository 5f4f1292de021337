"""The campaign runner end to end at tiny scale: short batches, two batches per scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from aseptic.campaign import Scenario, parse_scenario, run_campaign, write_campaign
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


def test_campaign_runs_scores_and_reports_unexecutable(tmp_path: Path) -> None:
    report = run_campaign(
        [_bias_loop(), _firmware()], batches=2, train_batches=3, workers=1, train_duration_h=DURATION_H
    )
    assert [s["id"] for s in report["scenarios"]] == ["ph-bias-loop-test"]
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
    (skipped,) = report["not_executed"]
    assert skipped["id"] == "firmware-test" and "firmware_swap" in skipped["reasons"][0]
    assert report["coverage"]["techniques_executed"] == ["T0856"]
    assert "T0839" not in report["coverage"]["techniques_detected"]
    assert report["coverage"]["techniques_not_executed"] == ["T0839"]
    json_path, html_path = write_campaign(report, tmp_path)
    assert json.loads(json_path.read_text(encoding="utf-8"))["scenarios"][0]["id"] == "ph-bias-loop-test"
    page = html_path.read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and "firmware-test" in page


def test_cli_rejects_unknown_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["campaign", "run", "no-such-scenario", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "no-such-scenario" in result.output
    assert not (tmp_path / "campaign.json").exists()


def test_cli_library_scenario_that_cannot_run_is_reported(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["campaign", "run", "probe-firmware-swap", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "campaign.json").read_text(encoding="utf-8"))
    assert report["scenarios"] == []
    assert [n["id"] for n in report["not_executed"]] == ["probe-firmware-swap"]

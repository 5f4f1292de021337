"""Every scenario of the shipped library runs at small scale: its times shrunk to a fifth (46 h
batches), one batch each, detectors fitted on three short clean batches. Platform primitives run
against the real components and their detections are deterministic, so they are asserted; process
detection at this scale is not (the full-scale numbers are in docs/benchmarks.md)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aseptic.campaign import Scenario, load_library, run_campaign

SCALE = 0.2
DURATION_H = 230.0 * SCALE
# Detected whatever the process detectors do: the platform's own checks.
PLATFORM_DETECTED = {
    "probe-firmware-swap": "attestation.",
    "softsensor-model-replaced": "provenance.load_refused",
    "historian-bulk-read": "access_analytics.",
    "batch-data-export": "access_analytics.trust.unusual_export",
    "ransomware-data-dir": "ransomware.encrypted_files",
    "ledger-rows-edited": "ledger_verify.",
    "ph-setpoint-stolen-operator": "gateway.write_denied",
}


def _scaled(scenario: Scenario) -> Scenario:
    def scale(value: float | None) -> float | None:
        return None if value is None else round(value * SCALE, 1)

    steps = []
    for step in scenario.steps:
        params = dict(step.params)
        if "lag_h" in params:
            params["lag_h"] = scale(float(params["lag_h"]))
        steps.append(replace(step, at_h=scale(step.at_h), duration_h=scale(step.duration_h), params=params))
    pre = replace(
        scenario.preconditions,
        after_h=scale(scenario.preconditions.after_h),
        batch_duration_h=DURATION_H,
    )
    return replace(scenario, steps=tuple(steps), preconditions=pre)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    library = [_scaled(s) for s in load_library([])]
    return run_campaign(library, batches=1, train_batches=3, workers=1, train_duration_h=DURATION_H)


def test_every_library_scenario_is_executed_and_scored(report: dict[str, Any]) -> None:
    library = load_library([])
    assert report["not_executed"] == []
    assert sorted(r["id"] for r in report["scenarios"]) == sorted(s.id for s in library)
    for row in report["scenarios"]:
        assert row["batches"] == 1
        # Every scenario has an expected detector the campaign runs: each one is scored.
        assert isinstance(row["detected"], bool), row["id"]
        assert row["false_alarms_per_100h"] is not None and math.isfinite(row["false_alarms_per_100h"])
        assert math.isfinite(row["impact"]["titre_loss_g_per_l"])
    coverage = report["coverage"]
    executed = {t for s in library for t in s.techniques}
    assert coverage["techniques_executed"] == len(executed)
    assert coverage["techniques_detected"] == len(coverage["detected"]) <= len(executed)


def test_platform_primitives_are_detected_by_the_platform(report: dict[str, Any]) -> None:
    rows = {r["id"]: r for r in report["scenarios"]}
    for sid, statistic in PLATFORM_DETECTED.items():
        row = rows[sid]
        assert row["detected"] is True, (sid, row["fired"])
        assert any(name.startswith(statistic) for name in row["fired"]), (sid, row["fired"])
        assert row["false_alarms_per_100h"] == 0.0, sid


def test_ransomware_records_are_restored_from_the_verified_backup(report: dict[str, Any]) -> None:
    row = {r["id"]: r for r in report["scenarios"]}["ransomware-data-dir"]
    platform = row["impact"]["platform"]
    assert platform["files_encrypted"] > 0 and platform["missing_files"] > 0
    # Every record the backup held is back, and equal to what the collector sealed and logged.
    assert platform["records_restored"] == platform["records_expected"] > 0
    assert platform["records_verified"] == platform["records_expected"]


def test_suppressed_alarms_are_found_by_the_alarm_audit(report: dict[str, Any]) -> None:
    row = {r["id"]: r for r in report["scenarios"]}["ph-alarm-suppressed"]
    suppressed = row["impact"]["platform"]["suppressed_alarms"]
    audited = [name for name in row["fired"] if name.startswith("alarm_audit.")]
    assert (suppressed > 0) == bool(audited) or row["fired"] == {}


def test_controller_tuning_runs_in_the_loop(report: dict[str, Any]) -> None:
    for sid in ("ph-controller-detuned", "temperature-controller-detuned"):
        row = {r["id"]: r for r in report["scenarios"]}[sid]
        assert row["techniques"] == ["T0821"] and row["detected"] is not None


def test_report_files_are_written(report: dict[str, Any], tmp_path: Path) -> None:
    from aseptic.campaign import write_campaign

    json_path, html_path = write_campaign(report, tmp_path)
    assert json_path.is_file() and html_path.read_text(encoding="utf-8").count("<svg") == 3


def test_stolen_identity_setpoint_writes_go_through_the_gateway_decision(report: dict[str, Any]) -> None:
    rows = {r["id"]: r for r in report["scenarios"]}
    # Outside the validated range: refused by the policy, never written, no impact.
    for sid in ("ph-setpoint-stolen-operator", "paa-setpoint-tamper"):
        row = rows[sid]
        assert row["impact"]["platform"]["write_allowed"] == [False]
        assert "gateway.write_denied" in row["fired"] and row["detected"] is True
        assert row["impact"]["titre_loss_g_per_l"] == 0.0
        assert row["not_evaluable"] == (["access_analytics"] if sid.startswith("ph-") else [])
    # Inside it, by an engineer: allowed, written, and only the process detectors can notice.
    assert rows["temperature-setpoint-within-range"]["impact"]["platform"]["write_allowed"] == [True]

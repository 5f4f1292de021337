"""Outcome reuse in the campaign's platform watches (ADR 0370): a ledger verification of byte-identical
files and a Cedar decision of an identical request are reused, and nothing else is. The reference
path (``reuse=False``) runs every verification and asks Cedar every time; both give the same
Findings, impacts and decisions."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aseptic.campaign import Scenario, parse_scenario
from aseptic.campaign._custody import CustodyWatch, _files
from aseptic.campaign._decisions import RepeatingDecisionPoint
from aseptic.campaign._platform import AccessWatch
from aseptic.campaign._scenario import Step
from aseptic.trust import (
    AccessRequest,
    EntityRef,
    PolicyBundle,
    PolicyDecisionPoint,
    RequestContext,
    plant_entities,
    principal_entity,
)

DURATION_H = 30.0
SAMPLE_H = 0.2


def _scenario(sid: str, step: dict[str, Any], expected: str) -> Scenario:
    return parse_scenario(
        {
            "schema_version": 1,
            "id": sid,
            "name": sid,
            "description": "test scenario",
            "techniques": step.pop("techniques"),
            "preconditions": {"after_h": 5, "batch_duration_h": DURATION_H},
            "steps": [step],
            "expected": [{"detector": expected, "within_h": 0.5}],
            "impact": ["titre_loss"],
        },
        source=f"{sid}.yaml",
    )


def _ransomware() -> Scenario:
    step = {"primitive": "ransomware_encrypt", "at_h": 26, "params": {"target": "data_dir"}}
    return _scenario("ransomware-test", {**step, "techniques": ["T0809"]}, "ransomware")


def _ledger_edit() -> Scenario:
    step = {"primitive": "ledger_tamper", "at_h": 27, "params": {"mutation": "flip"}}
    return _scenario("ledger-edit-test", {**step, "techniques": ["T0872"]}, "ledger_verify")


def _bulk_read() -> Scenario:
    step = {"primitive": "historian_bulk_read", "at_h": 20, "params": {"identity": "operator", "tags": 30}}
    return _scenario("bulk-read-test", {**step, "techniques": ["T0882"]}, "access_analytics")


def _samples(hours: float) -> list[tuple[float, dict[str, float]]]:
    out = []
    for k in range(1, round(hours / SAMPLE_H) + 1):
        t = round(k * SAMPLE_H, 6)
        out.append(
            (
                t,
                {
                    "batch_time_h": t,
                    "temperature_k": 298.0 + 0.01 * k,
                    "ph": 6.5,
                    "dissolved_o2_mg_per_l": 8.0 - 0.001 * k,
                    "paa_feed_l_per_h": 0.5,
                    "volume_l": 60_000.0 + k,
                },
            )
        )
    return out


def _drive_custody(steps: tuple[Step, ...], *, reuse: bool, edit_at_h: float | None = None) -> CustodyWatch:
    watch = CustodyWatch(steps, "collector-01", 50_000, (0.0, DURATION_H), reuse_verification=reuse)
    try:
        for t, sample in _samples(DURATION_H):
            if edit_at_h is not None and abs(t - edit_at_h) < 1e-9:
                _edit_a_reading_behind_the_watch(watch.data_dir)
            watch.observe(t, sample)
    finally:
        watch.close()
    return watch


def _edit_a_reading_behind_the_watch(data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / "ledger.db")
    try:
        first = conn.execute("SELECT leaf, position FROM readings ORDER BY leaf, position").fetchone()
        conn.execute("UPDATE readings SET value = value + 0.01 WHERE leaf = ? AND position = ?", first)
        conn.commit()
    finally:
        conn.close()


def test_custody_verifications_reused_give_the_same_findings_and_impact() -> None:
    """Every 0.4 h check verifies the ledger (the whole batch is in the watched window); the files
    change only when an envelope is sealed, a backup taken or the ledger edited, so most checks
    reuse the last verification, and the Findings and impact are the reference path's."""
    steps = _ledger_edit().steps
    reference = _drive_custody(steps, reuse=False)
    reused = _drive_custody(steps, reuse=True)
    checks = round(DURATION_H / 0.4)
    assert reference.verifications_run == checks and reference.verifications_reused == 0
    assert reused.verifications_run + reused.verifications_reused == checks
    assert reused.verifications_reused > reused.verifications_run
    assert reused.findings == reference.findings
    assert reused.impact == reference.impact
    # The edit at 27 h is caught at the next check, and at every check after it (the ledger stays
    # tampered), as on the reference path.
    assert reused.findings[0][1].startswith("ledger_verify.")
    assert reused.findings[0][0] == pytest.approx(27.2)
    assert len(reused.findings) == len([c for c in range(1, checks + 1) if c * 0.4 >= 27.2 - 1e-9])


def test_a_ledger_edit_between_two_passing_checks_is_caught_despite_reuse() -> None:
    """Someone else edits a stored reading while the watch runs (no step of its own): the files'
    digest changes, so the next check verifies again and finds it."""
    clean = _drive_custody((), reuse=True)
    assert clean.findings == []
    edited = _drive_custody((), reuse=True, edit_at_h=13.0)
    assert edited.findings and edited.findings[0] == (pytest.approx(13.2), "ledger_verify.LedgerTampered")


def test_ransomware_response_is_the_same_with_reused_verifications() -> None:
    reference = _drive_custody(_ransomware().steps, reuse=False)
    reused = _drive_custody(_ransomware().steps, reuse=True)
    assert reused.findings == reference.findings
    assert reused.impact == reference.impact
    assert {name for _, name in reused.findings} >= {"ransomware.encrypted_files"}
    assert reused.impact["records_restored"] == reused.impact["records_verified"] > 0


def test_file_listing_matches_rglob(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("x.db", "a/y.db", "a/b/z.locked"):
        (tmp_path / name).write_bytes(b"1")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "hidden.db").write_bytes(b"2")
    os.symlink(outside, tmp_path / "link")
    expected = {p.relative_to(tmp_path).as_posix(): str(p) for p in tmp_path.rglob("*") if p.is_file()}
    assert _files(tmp_path) == expected
    assert _files(tmp_path / "missing") == {}


def _drive_access(reuse: bool) -> AccessWatch:
    watch = AccessWatch(_bulk_read().steps, "operator", "B-50000", 10.0, reuse=reuse)
    for t, sample in _samples(DURATION_H):
        watch.observe(t, sample)
    watch.close()
    return watch


def test_access_watch_with_reused_decisions_finds_the_same() -> None:
    """The decision ledger read back into the access analytics holds the same decisions either way
    (the Findings are computed from it), while Cedar is asked once per distinct request."""
    reference = _drive_access(False)
    reused = _drive_access(True)
    assert reused.findings == reference.findings and reused.findings
    assert reused.impact == reference.impact
    assert reference.pdp.reused == 0
    assert reused.pdp.asked + reused.pdp.reused == reference.pdp.asked
    # Distinct requests: six routine tags at each hour of the day, thirty tags read in bulk.
    assert reused.pdp.asked <= 6 * 24 + 30 < reference.pdp.asked


_PDP = PolicyDecisionPoint(PolicyBundle.default(), plant_entities())
_REPEATING = RepeatingDecisionPoint(PolicyBundle.default(), plant_entities())
_START = datetime(2026, 1, 1, tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(
    role=st.sampled_from(["operator", "data_scientist", "process_engineer", "qa_reviewer"]),
    active=st.booleans(),
    action=st.sampled_from(["read_tag", "write_setpoint", "export_data"]),
    tag=st.sampled_from(["ph", "temperature_k", "ph_sp", "temperature_sp_k", "weight_kg"]),
    minutes=st.integers(min_value=0, max_value=3 * 24 * 60),
    zone=st.sampled_from(["operations", "control", "enterprise"]),
    conduit=st.sampled_from(["api", "write-gateway"]),
    in_range=st.booleans(),
)
def test_repeating_decision_point_decides_as_cedar(
    role: str, active: bool, action: str, tag: str, minutes: int, zone: str, conduit: str, in_range: bool
) -> None:
    """Whatever was asked before, the decision is exactly the plain decision point's for this request."""
    name = f"{role}-x"
    extra = [principal_entity("User", name, [role], active=active, areas=["fermentation"])]
    resource = EntityRef("Batch", "B-1") if action == "export_data" else EntityRef("Tag", tag)
    if resource.type == "Batch":
        from aseptic.trust import batch_entity

        extra.append(batch_entity("B-1", "fermenter-01", "fermentation"))
    context = RequestContext(
        batch_state="running",
        firmware_attested=True,
        source_zone=zone,
        conduit=conduit,
        time=_START + timedelta(minutes=minutes),
        within_validated_range=in_range,
    )
    request = AccessRequest(EntityRef("User", name), action, resource, context)
    assert _REPEATING.decide(request, extra) == _PDP.decide(request, extra)


def _bias_loop() -> Scenario:
    step = {
        "primitive": "sensor_bias",
        "at_h": 12,
        "duration_h": 12,
        "params": {"tag": "ph", "offset": 0.3, "path": "loop"},
        "techniques": ["T0856"],
    }
    return _scenario("ph-bias-loop-test", step, "mspc")


def test_campaign_with_reused_outcomes_matches_the_reference_path() -> None:
    """The same small campaign (a process scenario, ransomware, a ledger edit, a bulk read: every
    watch that reuses outcomes, and the clean companion running all of them) on both paths: every
    batch's Findings (per watch), times, impacts and alarm episodes, and the campaign.json rows."""
    from aseptic.bench import fit_detectors
    from aseptic.campaign import CAMPAIGN_SEED, run_campaign
    from aseptic.campaign._runner import _groups
    from aseptic.campaign._worker import init_worker, run_group

    scenarios = [_bias_loop(), _ransomware(), _ledger_edit(), _bulk_read()]
    detectors = fit_detectors(3, duration_h=DURATION_H)
    (group,) = _groups(scenarios, [CAMPAIGN_SEED])
    init_worker(detectors, None, "block", reuse=False)
    reference = run_group(group)
    init_worker(detectors, None, "block", reuse=True)
    reused = run_group(group)
    assert reused == reference
    assert {name.split(".")[0] for r in reused for _, name in r["findings"]} >= {
        "ransomware",
        "ledger_verify",
        "access_analytics",
    }

    def campaign(reuse: bool) -> dict[str, Any]:
        report = run_campaign(
            scenarios, batches=1, train_batches=3, workers=1, train_duration_h=DURATION_H, reuse=reuse
        )
        report.pop("timing")
        return report

    assert campaign(True) == campaign(False)


def test_prefixes_measured_on_the_fleet_arrays_score_like_the_sample_by_sample_comparison(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first differing sample of a batch published as the fleet stepped it is found on the
    fleet's arrays (a loop bias, a setpoint written through the gateway); a view-path batch is still
    compared sample by sample.
    Either way every batch scores as with the session-3 comparison of every batch."""
    from aseptic.bench import fit_detectors
    from aseptic.campaign import CAMPAIGN_SEED, _worker
    from aseptic.campaign._runner import _groups

    view = {
        "primitive": "sensor_bias",
        "at_h": 10,
        "duration_h": 8,
        "params": {"tag": "temperature_k", "offset": 0.5, "path": "view"},
        "techniques": ["T0856"],
    }
    setpoint = {
        "primitive": "setpoint_tamper",
        "at_h": 15,
        "params": {"tag": "temperature_sp_k", "value": 298.8, "identity": "process_engineer"},
        "techniques": ["T0836"],
    }
    scenarios = [
        _bias_loop(),
        _scenario("view-test", view, "mspc"),
        _scenario("setpoint-test", setpoint, "mspc"),
    ]
    (group,) = _groups(scenarios, [CAMPAIGN_SEED])
    _worker.init_worker(fit_detectors(3, duration_h=DURATION_H), None)
    monkeypatch.setattr(_worker, "_FLEET_PREFIX", False)
    reference = _worker.run_group(group)
    monkeypatch.setattr(_worker, "_FLEET_PREFIX", True)
    assert _worker.run_group(group) == reference
    assert any(r["findings"] for r in reference[1:])

"""The soft-sensor attacks are detected in the twin, named by ATLAS technique, and the loop falls back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from guard_support import DURATION_H, START, TEST_SEED

from aseptic.guard import (
    GuardSample,
    ModelGuard,
    adversarial_drift,
    poisoned_soft_sensor,
    replacement_soft_sensor,
    run_guarded_batch,
)
from aseptic.twin import Plant, default_soft_sensor

pytestmark = pytest.mark.requirement("ASE-DETECT")


def test_clean_batch_raises_nothing(make_guard: Callable[[], ModelGuard]) -> None:
    run = run_guarded_batch(Plant(TEST_SEED, duration_h=DURATION_H), make_guard(), start=START)
    assert run.findings == ()
    assert run.fallback_from_h is None


def test_poisoned_soft_sensor_is_detected_as_poisoning(make_guard: Callable[[], ModelGuard]) -> None:
    plant = Plant(TEST_SEED, duration_h=DURATION_H, soft_sensor=poisoned_soft_sensor())
    run = run_guarded_batch(plant, make_guard(), start=START)
    assert run.findings, "the poisoned sensor went unnoticed"
    first = run.findings[0]
    assert first.check == "shadow" and first.technique == "AML.T0020"
    assert run.fallback_from_h == first.batch_time_h
    assert plant.paa_fallback


def test_replaced_soft_sensor_is_detected_as_manipulation(make_guard: Callable[[], ModelGuard]) -> None:
    plant = Plant(TEST_SEED, duration_h=DURATION_H)
    run = run_guarded_batch(
        plant, make_guard(), start=START, replace_at_h=40.0, replacement=replacement_soft_sensor()
    )
    assert run.findings
    first = run.findings[0]
    assert first.technique == "AML.T0018" and 40.0 <= first.batch_time_h <= 42.0
    assert first.to_payload()["technique_name"] == "Manipulate AI Model"


def test_adversarial_input_drift_is_detected_as_evasion_and_the_fallback_holds_paa(
    make_guard: Callable[[], ModelGuard],
) -> None:
    tamper = adversarial_drift(default_soft_sensor(), start_h=40.0, ramp_h=10.0, shift_mg_per_l=-500.0)
    unguarded = run_guarded_batch(
        Plant(TEST_SEED, duration_h=DURATION_H, spectrum_tamper=tamper),
        make_guard(),
        start=START,
        fallback=False,
    )
    guarded = run_guarded_batch(
        Plant(TEST_SEED, duration_h=DURATION_H, spectrum_tamper=tamper), make_guard(), start=START
    )
    first = guarded.findings[0]
    assert first.check == "spectrum" and first.techniques == ("AML.T0043", "AML.T0015")
    assert 40.0 < first.batch_time_h < 50.0
    # Without the fallback the misled loop overfeeds PAA; with it PAA stays nearer the setpoint.
    assert guarded.max_true_paa_mg_per_l < unguarded.max_true_paa_mg_per_l


def test_a_reported_digest_other_than_the_deployed_one_is_flagged_at_once(
    make_guard: Callable[[], ModelGuard],
) -> None:
    guard = make_guard()
    sample = GuardSample(START, 1.0, None, 100.0, 0.0, 60_000.0, model_digest="0" * 64)
    (finding,) = guard.update(sample)
    assert finding.check == "digest" and finding.technique == "AML.T0018"
    assert guard.fallback_recommended
    assert guard.update(sample) == []  # one Finding per episode


def test_guard_findings_refuse_unknown_techniques() -> None:
    from aseptic.guard import GuardFinding

    with pytest.raises(ValueError, match="ATLAS"):
        GuardFinding(START, "b", 1.0, "x", 1.0, 1.0, ("AML.T9999",), "")

"""The public API of aseptic.guard is pinned, and its ATLAS ids are the ATLAS 5.6 ones."""

from __future__ import annotations

import aseptic.guard
from aseptic.guard import ATLAS_TECHNIQUES


def test_public_api_is_pinned() -> None:
    assert aseptic.guard.__all__ == [
        "ATLAS_TECHNIQUES",
        "GuardFinding",
        "GuardLimits",
        "GuardSample",
        "GuardedRun",
        "ModelGuard",
        "SpectralMonitor",
        "SpectralScore",
        "adversarial_drift",
        "calibrate_limits",
        "poisoned_soft_sensor",
        "replacement_soft_sensor",
        "run_guarded_batch",
    ]


def test_atlas_ids_and_names_match_atlas_5_6() -> None:
    # Copied from the MITRE ATLAS 5.6 technique list (AML.T0015/T0043 evasion, T0020 poisoning, T0018).
    assert ATLAS_TECHNIQUES == {
        "AML.T0015": "Evade AI Model",
        "AML.T0018": "Manipulate AI Model",
        "AML.T0020": "Poison Training Data",
        "AML.T0043": "Craft Adversarial Data",
    }

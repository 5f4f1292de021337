"""The public API of aseptic.detect is pinned."""

from __future__ import annotations

import aseptic.detect


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.detect.__all__) == sorted(
        [
            "AlarmState",
            "AutoencoderDetector",
            "Batch",
            "BatchModel",
            "Decision",
            "Detector",
            "DynamicPcaDetector",
            "Engine",
            "Ensemble",
            "EwmaResidualDetector",
            "Explanation",
            "Finding",
            "FindingSink",
            "FrozenValueDetector",
            "MspcDetector",
            "ONLINE_KINDS",
            "PcaDetector",
            "PhysicsDetector",
            "RecipeDetector",
            "ReplayDetector",
            "ResidualCusum",
            "Score",
            "StaleValueDetector",
            "TECHNIQUES",
            "TabularDetector",
            "TagPredictorDetector",
            "ThreeSigmaDetector",
            "Verdict",
            "alarm_episodes",
            "confirm_alarms",
            "count_episodes",
            "fit_model",
            "load_detector",
            "load_model",
            "model_digest",
            "online_tags",
            "save_detector",
            "save_model",
            "suggest_technique",
        ]
    )
    for name in aseptic.detect.__all__:
        assert hasattr(aseptic.detect, name)

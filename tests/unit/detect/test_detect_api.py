"""The public API of aseptic.detect is pinned."""

from __future__ import annotations

import aseptic.detect


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.detect.__all__) == sorted(
        [
            "CAUSES",
            "ONLINE_KINDS",
            "TECHNIQUES",
            "AlarmState",
            "AutoencoderDetector",
            "Batch",
            "BatchModel",
            "ControlRuleDetector",
            "BlockDetector",
            "BlockVerdict",
            "ControlLoopDetector",
            "Decision",
            "Detector",
            "DynamicPcaDetector",
            "Engine",
            "Ensemble",
            "EwmaResidualDetector",
            "ExpectsBlock",
            "Explanation",
            "FileDetector",
            "Finding",
            "FindingSink",
            "FrozenValueDetector",
            "MassBalanceDetector",
            "MspcDetector",
            "PcaDetector",
            "PhysicsDetector",
            "RecipeDetector",
            "RedundancyDetector",
            "ReplayDetector",
            "ResidualCusum",
            "SampleBlock",
            "Score",
            "ScoreBlock",
            "StaleValueDetector",
            "TabularDetector",
            "TabularEnsembleDetector",
            "TagPredictorDetector",
            "ThreeSigmaDetector",
            "TwinResidualDetector",
            "Verdict",
            "alarm_episodes",
            "confirm_alarms",
            "count_episodes",
            "fit_model",
            "load_detector",
            "load_ensemble_detector",
            "load_tabular_detector",
            "load_model",
            "model_digest",
            "online_tags",
            "save_detector",
            "save_tabular_detector",
            "save_model",
            "suggest_technique",
        ]
    )
    for name in aseptic.detect.__all__:
        assert hasattr(aseptic.detect, name)

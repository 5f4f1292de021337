"""Process-anomaly detection: batch MSPC, residual CUSUM, recipe and integrity checks, engine, Findings.

Train on clean batches, stream samples or readings through an ``Engine``, receive ``Finding``s::

    model = fit_model(clean_batches, settings.detect, seed=0)
    detectors = [MspcDetector(model), ResidualCusum(model), RecipeDetector(model)]
    engine = Engine(detectors, sink=ledger_append, clock=clock,
                    persistence=settings.detect.persistence_samples)
    engine.start_batch("B-0042")
    for sample in plant_samples:
        engine.push_sample(sample)

See docs/detect.md for the method and docs/adr/0050-batch-mspc.md for why.
"""

from aseptic.detect._baseline import ThreeSigmaDetector
from aseptic.detect._cusum import ResidualCusum
from aseptic.detect._detector import ONLINE_KINDS, Batch, Detector, Score, online_tags
from aseptic.detect._detector_file import FileDetector, load_detector, save_detector
from aseptic.detect._engine import (
    AlarmState,
    Engine,
    FindingSink,
    Verdict,
    alarm_episodes,
    confirm_alarms,
    count_episodes,
)
from aseptic.detect._finding import CAUSES, TECHNIQUES, Finding, suggest_technique
from aseptic.detect._model import BatchModel, fit_model
from aseptic.detect._mspc import MspcDetector
from aseptic.detect._physics import PhysicsDetector
from aseptic.detect._recipe import RecipeDetector
from aseptic.detect._replay import ReplayDetector
from aseptic.detect._stale import StaleValueDetector
from aseptic.detect._store import load_model, model_digest, save_model
from aseptic.detect._twin_residual import TwinResidualDetector

__all__ = [
    "CAUSES",
    "ONLINE_KINDS",
    "TECHNIQUES",
    "AlarmState",
    "Batch",
    "BatchModel",
    "Detector",
    "Engine",
    "FileDetector",
    "Finding",
    "FindingSink",
    "MspcDetector",
    "PhysicsDetector",
    "RecipeDetector",
    "ReplayDetector",
    "ResidualCusum",
    "Score",
    "StaleValueDetector",
    "ThreeSigmaDetector",
    "TwinResidualDetector",
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

"""Process-anomaly detection: batch MSPC, residual CUSUM, recipe and integrity checks, engine, Findings.

Train on clean batches, stream samples or readings through an ``Engine``, receive ``Finding``s::

    model = fit_model(clean_batches, settings.detect, seed=0)
    detectors = [MspcDetector(model), ResidualCusum(model), RecipeDetector(model)]
    engine = Engine(detectors, sink=ledger_append, clock=clock,
                    persistence=settings.detect.persistence_samples)
    engine.start_batch("B-0042")
    for sample in plant_samples:
        engine.push_sample(sample)

Several samples at once (a file, a benchmark, catch-up after a gap): ``engine.push_block(samples)``
scores them in vectorised form with the same results, bit for bit (``BlockVerdict``).

Tabular detectors (``PcaDetector``, ``DynamicPcaDetector``, ``TagPredictorDetector``,
``EwmaResidualDetector``, ``AutoencoderDetector``, ``FrozenValueDetector``, and the hydraulic
consistency checks ``ControlRuleDetector`` and ``MassBalanceDetector``) score a samples x
variables stream (continuous units, public benchmarks) and combine in an ``Ensemble`` whose limits
are calibrated on held-out normal data for one false-alarm rate; ``TabularEnsembleDetector`` (loaded
with ``load_ensemble_detector``, verified first) runs a fitted ensemble in the streaming ``Engine``.

See docs/detect.md for the method and docs/adr/0050-batch-mspc.md for why.
"""

from aseptic.detect._autoencoder import AutoencoderDetector
from aseptic.detect._baseline import ThreeSigmaDetector
from aseptic.detect._block import BlockDetector, ExpectsBlock, SampleBlock, ScoreBlock
from aseptic.detect._control import ControlLoopDetector
from aseptic.detect._control_rule import ControlRuleDetector
from aseptic.detect._cusum import ResidualCusum
from aseptic.detect._detector import ONLINE_KINDS, Batch, Detector, Score, online_tags
from aseptic.detect._detector_file import FileDetector, load_detector, save_detector
from aseptic.detect._dpca import DynamicPcaDetector
from aseptic.detect._engine import BlockVerdict, Engine, FindingSink, Verdict
from aseptic.detect._ensemble import Decision, Ensemble, Explanation
from aseptic.detect._episodes import AlarmState, alarm_episodes, confirm_alarms, count_episodes
from aseptic.detect._ewma import EwmaResidualDetector
from aseptic.detect._finding import CAUSES, TECHNIQUES, Finding, suggest_technique
from aseptic.detect._frozen import FrozenValueDetector
from aseptic.detect._mass_balance import MassBalanceDetector
from aseptic.detect._model import BatchModel, fit_model
from aseptic.detect._mspc import MspcDetector
from aseptic.detect._pca_tabular import PcaDetector
from aseptic.detect._physics import PhysicsDetector
from aseptic.detect._predictor import TagPredictorDetector
from aseptic.detect._recipe import RecipeDetector
from aseptic.detect._redundancy import RedundancyDetector
from aseptic.detect._replay import ReplayDetector
from aseptic.detect._stale import StaleValueDetector
from aseptic.detect._store import load_model, model_digest, save_model
from aseptic.detect._tabular import TabularDetector
from aseptic.detect._tabular_store import load_tabular_detector, save_tabular_detector
from aseptic.detect._tabular_stream import TabularEnsembleDetector, load_ensemble_detector
from aseptic.detect._twin_residual import TwinResidualDetector

__all__ = [
    "CAUSES",
    "ONLINE_KINDS",
    "TECHNIQUES",
    "AlarmState",
    "AutoencoderDetector",
    "Batch",
    "BatchModel",
    "BlockDetector",
    "BlockVerdict",
    "ControlLoopDetector",
    "ControlRuleDetector",
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
    "load_model",
    "load_tabular_detector",
    "model_digest",
    "online_tags",
    "save_detector",
    "save_model",
    "save_tabular_detector",
    "suggest_technique",
]

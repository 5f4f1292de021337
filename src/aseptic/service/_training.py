"""Train the process-anomaly detector on clean simulated batches; save it; load it back verified."""

from __future__ import annotations

from pathlib import Path

from aseptic.config import Settings
from aseptic.detect import (
    BatchModel,
    Detector,
    FileDetector,
    PhysicsDetector,
    RedundancyDetector,
    ReplayDetector,
    StaleValueDetector,
    TwinResidualDetector,
    fit_model,
    load_detector,
    load_model,
    save_detector,
    save_model,
)
from aseptic.twin import BatchResult, simulate_batches

__all__ = ["batch_samples", "train_detector", "train_detectors"]

MODEL_FILE = Path("models") / "batch-mspc.json"


def batch_samples(batch: BatchResult) -> list[dict[str, float]]:
    """A simulated batch as the detector sees a stream: one tag -> value mapping per sample."""
    names = list(batch.tags)
    columns = [batch.tags[name].tolist() for name in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def train_detector(data_dir: Path, settings: Settings, *, seed: int) -> BatchModel:
    """Fit on ``settings.detect.training_batches`` clean batches (seeds ``seed``...), save the model
    with its digest under ``data_dir/models`` and return it as loaded back (digest checked).

    Raises:
        InputError: too few batches to fit and calibrate.
        IntegrityError: the saved model does not match its digest when read back.
    """
    model, _ = train_detectors(data_dir, settings, seed=seed)
    return model


def train_detectors(data_dir: Path, settings: Settings, *, seed: int) -> tuple[BatchModel, list[Detector]]:
    """The batch model (saved and loaded back verified) and the integrity and twin-residual
    detectors, all fitted on the same clean batches (seeds ``seed``...).

    Raises:
        InputError: too few batches to fit and calibrate.
        IntegrityError: the saved model does not match its digest when read back.
    """
    batches = [
        batch_samples(b)
        for b in simulate_batches(settings.detect.training_batches, seed, settings=settings.twin)
    ]
    model = fit_model(batches, settings.detect, seed=seed)
    path = data_dir / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    others: list[Detector] = []
    fitted: tuple[FileDetector, ...] = (
        StaleValueDetector(),
        ReplayDetector(),
        PhysicsDetector(),
        TwinResidualDetector(seed=seed),
        RedundancyDetector(),
    )
    for detector in fitted:
        detector.fit(batches)
        file = path.parent / f"{detector.name}.json"
        others.append(load_detector(file, expected_digest=save_detector(detector, file)))
    digest = save_model(model, path)
    return load_model(path, expected_digest=digest), others

"""What every detector scoring with a ``BatchModel`` shares: its name, its model, and ``fit``."""

from __future__ import annotations

from collections.abc import Sequence

from aseptic.config import DetectSettings
from aseptic.detect._detector import Batch
from aseptic.detect._model import BatchModel, fit_model

__all__ = ["ModelDetector"]


class ModelDetector:
    """Base of the detectors that score with a fitted ``BatchModel`` (given, or fitted by ``fit``)."""

    def __init__(
        self,
        model: BatchModel | None,
        *,
        settings: DetectSettings | None,
        seed: int,
        name: str,
        aligned: bool = True,
    ) -> None:
        self._model = model
        self._settings = settings
        self._seed = seed
        self._name = name
        self._aligned = model.aligned if model is not None else aligned

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> BatchModel:
        """The fitted model (RuntimeError before ``fit``)."""
        if self._model is None:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        return self._model

    def fit(self, batches: Sequence[Batch]) -> None:
        """Fit the model on clean batches and start afresh (``fit_model``; InputError on unusable data)."""
        self._model = fit_model(batches, self._settings, aligned=self._aligned, seed=self._seed)
        self.reset()

    def reset(self) -> None:
        """Forget the current batch (nothing to forget by default)."""

"""CUSUM on per-tag prediction residuals: slow drifts that T2 and SPE see too late.

A stealthy ramp on one sensor (Cardenas et al. size attacks to stay under per-sample limits)
moves its aligned deviation z a little further each sample. Normal z wanders slowly (a batch runs
a little high for hours), and a CUSUM on autocorrelated input needs a uselessly high threshold, so
each tag's z is first turned into a one-step-ahead prediction residual by an EWMA predictor fitted
on held-out batches (``_limits``), divided by the innovation's robust sd and fed to a
two-sided tabular CUSUM with input clipped to +-CUSUM_CLIP:

    S+ = min(cap, max(0, S+ + w - k)),  S- = min(cap, max(0, S- - w - k))

k (``cusum_k``, in innovation sds) is half the shift detected fastest; each tag's h is calibrated
on held-out clean batches so that all tags together keep an in-control run length of
``cusum_arl0_h`` batch-hours between false-alarm episodes (``calibrate_cusum_h``). The sums are
capped at ``CUSUM_CAP * h`` so an alarm clears soon after a drift stops. The score is the largest
S/h over tags (limit 1); the contributions are each tag's share of S/h, so a Finding names the
drifting tag. A steady offset is absorbed by the predictor: bias steps are T2's, SPE's and the
per-tag limit's business.
"""

from __future__ import annotations

import numpy as np

from aseptic.config import DetectSettings
from aseptic.detect._align import cap_z
from aseptic.detect._block import SampleBlock, ScoreBlock, contribution_shares, full
from aseptic.detect._detector import FloatArray, Sample, Score, sample_batch_time, sample_vector
from aseptic.detect._fitted import ModelDetector
from aseptic.detect._limits import CUSUM_CAP, cusum_step, innovation_step
from aseptic.detect._model import BatchModel

__all__ = ["ResidualCusum"]


class ResidualCusum(ModelDetector):
    """Per-tag two-sided CUSUM on one-step prediction residuals; one statistic, ``<name>.drift``."""

    def __init__(
        self,
        model: BatchModel | None = None,
        *,
        settings: DetectSettings | None = None,
        seed: int = 0,
        name: str = "cusum",
    ) -> None:
        super().__init__(model, settings=settings, seed=seed, name=name)
        self._upper: FloatArray = np.zeros(0)
        self._lower: FloatArray = np.zeros(0)
        self._prediction: FloatArray = np.zeros(0)
        if model is not None:
            self.reset()

    def reset(self) -> None:
        """Zero the sums: a new batch starts in control."""
        p = len(self.model.tags)
        self._upper = np.zeros(p)
        self._lower = np.zeros(p)
        self._prediction = np.zeros(p)

    def score_one(self, sample: Sample) -> tuple[Score]:
        """Update every tag's CUSUM with this sample's prediction residual; score the largest S/h.

        Missing tags (or an unscorable sample) add nothing: their sums decay by k.

        Raises:
            InputError: the sample has no usable ``batch_time_h``.
        """
        model = self.model
        t = sample_batch_time(sample)
        z = cap_z(model.alignment.standardise(t, sample_vector(sample, model.tags)))
        # One step of ``_scan``'s recursion: the same operations, without the block's arrays.
        innovation, self._prediction = innovation_step(self._prediction, z, model.drift_lambda)
        w = innovation / model.drift_scale
        cap = CUSUM_CAP * model.cusum_h
        self._upper, self._lower = cusum_step(self._upper, self._lower, w, model.cusum_k, cap)
        per_tag = np.maximum(self._upper, self._lower) / model.cusum_h
        return (
            Score(f"{self._name}.drift", float(per_tag.max()), 1.0, contribution_shares(model.tags, per_tag)),
        )

    def score_block(self, block: SampleBlock) -> tuple[ScoreBlock]:
        """``score_one`` of every sample of ``block`` in turn (the recursion row by row, the rest at once)."""
        model = self.model
        return (self._scan(model.alignment.standardise(block.times, block.matrix(model.tags))),)

    def _scan(self, z: FloatArray) -> ScoreBlock:
        model = self.model
        z = cap_z(z)
        cap = CUSUM_CAP * model.cusum_h
        per_tag = np.empty_like(z)
        for i in range(z.shape[0]):
            innovation, self._prediction = innovation_step(self._prediction, z[i], model.drift_lambda)
            w = innovation / model.drift_scale
            self._upper, self._lower = cusum_step(self._upper, self._lower, w, model.cusum_k, cap)
            per_tag[i] = np.maximum(self._upper, self._lower) / model.cusum_h
        values = per_tag.max(axis=1)
        return ScoreBlock(f"{self._name}.drift", values, full(z.shape[0], 1.0), model.tags, per_tag)

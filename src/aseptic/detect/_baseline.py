"""Baseline: static 3-sigma limits per tag, the way a plain alarm system sets them.

Each online tag gets one mean and one standard deviation over every training sample, whatever the
batch time; a sample is flagged when any tag is more than ``sigmas`` standard deviations from its
mean. It ignores the recipe (a fed-batch trajectory sweeps through most of its range) and the
correlation between tags, which is what the MSPC detector adds. Kept to be measured against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aseptic.detect._detector import (
    Batch,
    FloatArray,
    Sample,
    Score,
    batch_matrix,
    online_tags,
    sample_vector,
)
from aseptic.detect._mspc import contribution_shares
from aseptic.errors import InputError

__all__ = ["ThreeSigmaDetector"]


class ThreeSigmaDetector:
    """Static per-tag limits mean +- ``sigmas`` * sd; one statistic ``<name>.max_z``."""

    def __init__(self, *, sigmas: float = 3.0, name: str = "3sigma") -> None:
        if sigmas <= 0:
            raise ValueError(f"sigmas must be positive (got {sigmas})")
        self._sigmas = sigmas
        self._name = name
        self._tags: tuple[str, ...] = ()
        self._mean: FloatArray = np.zeros(0)
        self._sd: FloatArray = np.zeros(0)

    @property
    def name(self) -> str:
        return self._name

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    def fit(self, batches: Sequence[Batch]) -> None:
        """Global mean and sd of each online tag over every training sample.

        Raises:
            InputError: no batch, empty batches or no usable online tag.
        """
        tags = online_tags(batches)
        x = np.concatenate([batch_matrix(b, tags)[1] for b in batches])
        if x.shape[0] < 2:
            raise InputError("3-sigma limits need at least 2 training samples")
        self._mean = np.nanmean(x, axis=0)
        sd = np.nanstd(x, axis=0, ddof=1)
        self._sd = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1e-12)
        self._tags = tags

    def reset(self) -> None:
        """Nothing to forget."""

    def score_one(self, sample: Sample) -> tuple[Score]:
        """The largest absolute z of the sample's tags (missing tags ignored)."""
        if not self._tags:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        z = np.abs(sample_vector(sample, self._tags) - self._mean) / self._sd
        finite = np.isfinite(z)
        value = float(z[finite].max()) if finite.any() else 0.0
        excess = np.where(finite, np.maximum(z - self._sigmas, 0.0), 0.0)
        shares = contribution_shares(self._tags, excess if excess.any() else np.where(finite, z, 0.0))
        return (Score(f"{self._name}.max_z", value, self._sigmas, shares),)

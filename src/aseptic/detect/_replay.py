"""Replayed segments: a recent window of a noisy tag that repeats an earlier window too exactly.

Replaying recorded telemetry hides a manipulation behind a plausible picture (ATT&CK for ICS T0856
Spoofed Reporting Message / T0832 Manipulation of View, the "replay" reason). Two windows of a
measured tag never agree closely in clean data: each carries its own measurement noise, so their
RMS difference is about sqrt(2) noise sds even when the process repeats itself. A replayed window
agrees to the last bit.

For every watched tag the detector keeps the batch so far; at each sample it compares the last
``window`` samples with every earlier window that does not overlap them (a vectorised nearest
neighbour: O(batch length x window) per tag, no model) and takes the smallest RMS difference in
noise sds, ``d``. Watched tags: sensors and soft sensors with measurement noise (learned, not from
the catalogue). A window that is itself flat (sd under a quarter of the noise) is left to the
stale detector. The floor ``d_min`` per tag is the smallest ``d`` seen on the clean batches times
``margin`` (0.5); statistic ``<name>.match`` = max over tags of ``d_min / d`` (limit 1, capped at
1000 for an exact copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from aseptic.detect._detector import (
    Batch,
    FloatArray,
    Sample,
    Score,
    batch_matrix,
    online_tags,
    sample_vector,
)
from aseptic.detect._holds import noise_sd
from aseptic.detect._mspc import contribution_shares
from aseptic.errors import InputError
from aseptic.twin import TAGS_BY_NAME, TagKind

__all__ = ["ReplayDetector"]

WINDOW = 6  # samples (1.2 h at 0.2 h)
MARGIN = 0.5
SCORE_CAP = 1000.0
_MEASURED = frozenset({TagKind.SENSOR, TagKind.SOFT_SENSOR})
_FLAT = 0.25  # a window with sd under this many noise sds is flat (the stale detector's case)
_SEGMENT = 1e9  # noise sds between two tags' segments of the sorted index


class ReplayDetector:
    """Windows of noisy measured tags that repeat an earlier window; statistic ``<name>.match``."""

    def __init__(self, *, window: int = WINDOW, margin: float = MARGIN, name: str = "replay") -> None:
        if window < 2:
            raise ValueError(f"window must be at least 2 samples (got {window})")
        if not 0 < margin <= 1:
            raise ValueError(f"margin must be in (0, 1] (got {margin})")
        self._window = window
        self._margin = margin
        self._name = name
        self._fitted = False
        self.tags: tuple[str, ...] = ()
        self.noise = np.zeros(0)
        self.d_min = np.zeros(0)
        self._history = np.zeros((0, 0))
        self._n = 0

    @property
    def name(self) -> str:
        return self._name

    def fit(self, batches: Sequence[Batch]) -> None:
        """Learn the noise of each measured tag and the closest clean window match.

        Raises:
            InputError: no batch, empty batches, or no measured tag with noise.
        """
        candidates = online_tags(batches)
        matrices = [batch_matrix(b, candidates)[1] for b in batches]
        keep, noise = [], []
        for j, tag in enumerate(candidates):
            spec = TAGS_BY_NAME.get(tag)
            sd = float(np.median([noise_sd(x[:, j]) for x in matrices]))
            if spec is not None and spec.kind in _MEASURED and sd > 0:
                keep.append(j)
                noise.append(sd)
        if not keep:
            raise InputError("replay detection needs at least one measured tag with measurement noise")
        self.tags = tuple(candidates[j] for j in keep)
        self.noise = np.array(noise, dtype=np.float64)
        self.d_min = np.full(len(keep), np.inf)
        self._fitted = True
        closest = np.full(len(keep), np.inf)
        for x in matrices:
            self.reset()
            for row in x[:, keep]:
                closest = np.fmin(closest, self._distances(row, exact=True))
        # A tag whose windows never compared (short batches) gets the sqrt(2) of pure noise.
        closest = np.where(np.isfinite(closest), closest, np.sqrt(2.0))
        self.d_min = self._margin * closest
        self.reset()

    def reset(self) -> None:
        """Forget the current batch."""
        self._history = np.full((256, len(self.tags)), np.nan)
        self._n = 0
        # The last values (in noise sds) of the earlier windows, every tag in its own segment
        # (offset by tag index x _SEGMENT), sorted; and where each of those windows ends.
        self._keys = np.zeros(0)
        self._ends = np.zeros(0, dtype=np.int64)

    def score_one(self, sample: Sample) -> tuple[Score]:
        """The closest match of the last window to an earlier one, as ``d_min / d`` (max over tags)."""
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        d = self._distances(sample_vector(sample, self.tags))
        ratio = np.where(np.isfinite(d), self.d_min / np.maximum(d, self.d_min / SCORE_CAP), 0.0)
        over = np.where(ratio > 1.0, ratio, 0.0)
        shares = contribution_shares(self.tags, over if over.any() else ratio)
        return (Score(f"{self._name}.match", float(ratio.max()), 1.0, shares),)

    def _index_window(self, end: int) -> None:
        """Add the window ending at sample ``end`` (now entirely before the current window)."""
        if end < self._window - 1:
            return
        values = self._history[end] / self.noise + np.arange(len(self.tags)) * _SEGMENT
        ok = np.isfinite(values)
        at = np.searchsorted(self._keys, values[ok])
        self._keys = np.insert(self._keys, at, values[ok])
        self._ends = np.insert(self._ends, at, end)

    def _distances(self, row: FloatArray, *, exact: bool = False) -> FloatArray:
        """Append one sample; per tag, the smallest RMS difference (noise sds) to an earlier window.

        Unless ``exact``, per tag only the earlier windows whose last sample is within
        ``sqrt(window) * d_min`` noise sds of the current last sample are compared in full (a window
        closer than ``d_min`` in RMS must be). A tag's result is the distance to its closest compared
        window, or with none compared the lower bound min |last-sample gap| / sqrt(window), which is
        above ``d_min``: exact whenever the score is over its limit, ~10x cheaper on clean data.
        """
        if self._n == self._history.shape[0]:  # grow by doubling: amortised O(1) per sample
            self._history = np.concatenate([self._history, np.full_like(self._history, np.nan)])
        self._history[self._n] = row
        self._n += 1
        w, n = self._window, self._n
        out = np.full(row.size, np.inf)
        if n < 2 * w:
            return out
        h = self._history[:n]  # samples x tags
        current = h[n - w :]
        mean = current.mean(axis=0)
        spread = np.sqrt(((current - mean) ** 2).mean(axis=0))
        skip = ~(spread >= _FLAT * self.noise)  # flat, or a NaN in the window
        if exact:
            earlier = sliding_window_view(h[: n - w], w, axis=0)  # windows x tags x w
            diff = earlier - current.T[np.newaxis]
            rms = np.sqrt(np.mean(diff * diff, axis=2)) / self.noise  # windows x tags
            return np.where(skip, np.inf, np.where(np.isfinite(rms), rms, np.inf).min(axis=0))
        self._index_window(n - w - 1)
        p = row.size
        offset = np.arange(p) * _SEGMENT
        query = current[-1] / self.noise + offset
        radius = np.sqrt(w) * self.d_min
        keys = self._keys
        lo = np.searchsorted(keys, query - radius, side="left")
        hi = np.searchsorted(keys, query + radius, side="right")
        # With no close window: the nearest last-sample gap (other tags' segments are ~_SEGMENT away).
        left = np.where(lo > 0, keys[np.maximum(lo - 1, 0)] if keys.size else np.inf, np.inf)
        right = np.where(lo < keys.size, keys[np.minimum(lo, keys.size - 1)] if keys.size else np.inf, np.inf)
        gap = np.fmin(np.abs(query - left), np.abs(right - query))
        rms = np.where(np.isfinite(gap), gap, np.inf) / np.sqrt(w)
        counts = np.where(np.isfinite(query), hi - lo, 0)
        total = int(counts.sum())
        if total:  # candidate windows, grouped by tag: compare them in full
            starts = np.cumsum(counts) - counts
            idx = np.arange(total) + np.repeat(lo - starts, counts)
            tag = np.repeat(np.arange(p), counts)
            rows = self._ends[idx][:, np.newaxis] + np.arange(1 - w, 1)[np.newaxis, :]
            diff = h[rows, tag[:, np.newaxis]] - current[:, tag].T
            near = np.sqrt(np.mean(diff * diff, axis=1)) / self.noise[tag]
            near = np.where(np.isfinite(near), near, np.inf)
            has = counts > 0
            rms[has] = np.minimum.reduceat(near, starts[has])
        return np.where(skip, np.inf, rms)

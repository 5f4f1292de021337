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

from aseptic.detect._block import SampleBlock, ScoreBlock, full
from aseptic.detect._detector import (
    Batch,
    FloatArray,
    IntArray,
    Sample,
    Score,
    batch_matrix,
    online_tags,
    sample_vector,
)
from aseptic.detect._holds import noise_sd
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
                closest = np.fmin(closest, self._distances_exact(row))
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
        self._offset = np.arange(len(self.tags)) * _SEGMENT
        self._radius = np.sqrt(self._window) * self.d_min

    def score_one(self, sample: Sample) -> tuple[Score]:
        """The closest match of the last window to an earlier one, as ``d_min / d`` (max over tags)."""
        self._check_fitted()
        return (self._scan(sample_vector(sample, self.tags)[np.newaxis]).score(0),)

    def score_block(self, block: SampleBlock) -> tuple[ScoreBlock]:
        """``score_one`` of every sample of ``block`` in turn, vectorised (the same bits)."""
        self._check_fitted()
        return (self._scan(block.matrix(self.tags)),)

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")

    def _scan(self, rows: FloatArray) -> ScoreBlock:
        """Append ``rows`` (samples x tags) to the batch and score each as the batch stood then.

        Per tag, ``d`` = the smallest RMS difference (noise sds) between the last ``window`` samples
        and an earlier window that does not overlap them *and whose last sample is within
        sqrt(window) x d_min noise sds of the current one* (a window closer than ``d_min`` in RMS
        must be; the rest are not compared). No such window: no match (ratio 0). So the ratio is
        exact whenever it is over the limit, and well defined below it, whichever path computes it.
        Every sum runs along a contiguous row, so one row alone and a block give the same bits.
        """
        m, p = rows.shape
        n0, w = self._n, self._window
        n = n0 + m
        if n > self._history.shape[0]:  # grow by doubling: amortised O(1) per sample
            grown = np.full((max(2 * self._history.shape[0], n), p), np.nan)
            grown[:n0] = self._history[:n0]
            self._history = grown
        self._history[n0:n] = rows
        self._n = n
        h = self._history[:n]
        ratio = np.zeros((m, p))
        first = max(n0, 2 * w - 1)  # the first row with an earlier non-overlapping window
        if first < n and p:
            positions = np.arange(first, n)
            d = self._closest(h, positions)
            # Flat windows (or a NaN inside) are the stale detector's: no replay verdict. Each window
            # is a contiguous row reduced along its last axis: the same sums for one row or a block.
            count = n - first
            if count == 1:  # streaming: the last window only (sliding_window_view costs more)
                windows = np.ascontiguousarray(h[n - w : n].T[np.newaxis])
            else:
                windows = np.ascontiguousarray(
                    sliding_window_view(h, w, axis=0)[first - w + 1 : first - w + 1 + count]
                )
            mean = np.add.reduce(windows, axis=2) / w
            dev = windows - mean[:, :, np.newaxis]
            spread = np.sqrt(np.add.reduce(dev * dev, axis=2) / w)
            d = np.where(spread >= _FLAT * self.noise, d, np.inf)
            ratio[first - n0 :] = np.where(
                np.isfinite(d), self.d_min / np.maximum(d, self.d_min / SCORE_CAP), 0.0
            )
        over = np.where(ratio > 1.0, ratio, 0.0)
        shares = np.where(over.any(axis=1, keepdims=True), over, ratio)
        values = ratio.max(axis=1) if p else np.zeros(m)
        return ScoreBlock(f"{self._name}.match", values, full(m, 1.0), self.tags, shares)

    def _closest(self, h: FloatArray, positions: IntArray) -> FloatArray:
        """Per position and tag, the RMS difference to the closest candidate window (inf: none)."""
        w, n = self._window, h.shape[0]
        p, offset = h.shape[1], self._offset
        if positions.size == 1:
            # Streaming: one more window joins the sorted index (one insertion).
            self._index_window(n - w - 1)
            keys, ends = self._keys, self._ends
        else:
            # A block: every window that is earlier than some row of it, sorted once; a row only
            # takes the windows that end before its own window starts.
            ends_all = np.arange(w - 1, n - w, dtype=np.int64)
            all_keys = (h[ends_all] / self.noise + offset).T.ravel()  # tag segments in order
            all_ends = np.tile(ends_all, p)
            ok = np.isfinite(all_keys)
            order = np.argsort(all_keys[ok], kind="stable")
            keys, ends = all_keys[ok][order], all_ends[ok][order]
            self._keys, self._ends = keys, ends  # the streaming index after these rows
        query = h[positions] / self.noise + offset  # positions x tags
        radius = self._radius
        lo = np.searchsorted(keys, query - radius, side="left")
        hi = np.searchsorted(keys, query + radius, side="right")
        counts = np.where(np.isfinite(query), hi - lo, 0).ravel()
        best = np.full(query.size, np.inf)
        total = int(counts.sum())
        if total:
            starts = np.cumsum(counts) - counts
            pair = np.repeat(np.arange(query.size), counts)
            idx = np.arange(total) + np.repeat(lo.ravel() - starts, counts)
            end = ends[idx]
            if positions.size == 1:  # the streaming index holds earlier windows only
                at, tag = np.full(total, positions[0]), pair
            else:
                at = positions[pair // p]
                causal = end <= at - w
                pair, end, at = pair[causal], end[causal], at[causal]
                tag = pair % p
            # Each candidate's squared differences as one contiguous row, reduced along it: the
            # same sum for a candidate found streaming or in a block.
            span = np.arange(1 - w, 1)
            column = tag[:, np.newaxis]
            diff = h[end[:, np.newaxis] + span, column] - h[at[:, np.newaxis] + span, column]
            rms = np.sqrt(np.add.reduce(diff * diff, axis=1) / w) / self.noise[tag]
            np.minimum.at(best, pair, np.where(np.isfinite(rms), rms, np.inf))
        return best.reshape(query.shape)

    def _index_window(self, end: int) -> None:
        """Add the window ending at sample ``end`` (now entirely before the current window)."""
        if end < self._window - 1:
            return
        values = self._history[end] / self.noise + self._offset
        values = np.sort(values[np.isfinite(values)])
        # One merge of a few values into the sorted index (np.insert, twice, costs more).
        size = self._keys.size + values.size
        new = np.searchsorted(self._keys, values) + np.arange(values.size)
        old = np.ones(size, dtype=bool)
        old[new] = False
        keys, ends = np.empty(size), np.empty(size, dtype=np.int64)
        keys[new], ends[new] = values, end
        keys[old], ends[old] = self._keys, self._ends
        self._keys, self._ends = keys, ends

    def _distances_exact(self, row: FloatArray) -> FloatArray:
        """Append one sample; per tag, the smallest RMS difference to *every* earlier window (fit)."""
        if self._n == self._history.shape[0]:
            self._history = np.concatenate([self._history, np.full_like(self._history, np.nan)])
        self._history[self._n] = row
        self._n += 1
        w, n = self._window, self._n
        if n < 2 * w:
            return np.full(row.size, np.inf)
        h = self._history[:n]
        current = h[n - w :]
        mean = current.mean(axis=0)
        spread = np.sqrt(((current - mean) ** 2).mean(axis=0))
        skip = ~(spread >= _FLAT * self.noise)  # flat, or a NaN in the window
        earlier = sliding_window_view(h[: n - w], w, axis=0)  # windows x tags x w
        diff = earlier - current.T[np.newaxis]
        rms = np.sqrt(np.mean(diff * diff, axis=2)) / self.noise  # windows x tags
        return np.where(skip, np.inf, np.where(np.isfinite(rms), rms, np.inf).min(axis=0))

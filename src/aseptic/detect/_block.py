"""Blocks of samples scored at once: the samples as matrices, and one statistic's scores as arrays.

When several samples of a batch are available together (a file replayed, a benchmark, catch-up
after a gap in the telemetry), a detector that implements ``score_block(block)`` scores them in
vectorised form: the same values, limits and contributions as calling ``score_one`` on each sample
in turn, sample by sample (causal: row i depends on rows 0..i and earlier samples of the batch
only). ``Score`` objects, whose contribution shares are sorted in Python, are only built for the
rows that need one (a Finding, or a caller asking for a sample's ``Verdict``). Decisions:
docs/adr/0290-batched-detector-scoring.md.

Results are bit-identical to the per-sample path, not merely close: both paths run the same
elementwise operations, and sums run in an order that does not depend on how many rows are scored
together (``matmul_rows``, ``sum_columns``): BLAS sums a matrix-matrix product in another order
than a matrix-vector one (an ulp apart, measured), which could flip a flag sitting on its limit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from aseptic.detect._detector import BATCH_TIME_TAG, FloatArray, Score, as_float, sample_batch_time

__all__ = [
    "BlockDetector",
    "ExpectsBlock",
    "SampleBlock",
    "ScoreBlock",
    "block_matrix",
    "contribution_shares",
    "full",
    "matmul_rows",
    "sum_columns",
]

_NUMERIC = frozenset({float, int, np.float64})


def contribution_shares(tags: Sequence[str], contributions: FloatArray) -> tuple[tuple[str, float], ...]:
    """(tag, share) pairs from raw contributions: negatives and NaN count as 0, largest share first."""
    c = np.where(np.isfinite(contributions), np.maximum(contributions, 0.0), 0.0)
    total = float(c.sum())
    if total <= 0:
        return ()
    # Python floats: indexing a numpy array element by element costs more than the sort itself.
    ranked = sorted([(-v, tags[j]) for j, v in enumerate(c.tolist()) if v > 0])
    return tuple([(tag, -v / total) for v, tag in ranked])


def block_matrix(samples: Sequence[Mapping[str, float]], tags: Sequence[str]) -> FloatArray:
    """``samples`` x ``tags`` values as floats; missing or non-numeric values are NaN.

    The same conversion as ``sample_vector`` row by row, in one pass (a type check of the whole
    block instead of one function call per value).
    """
    n, p = len(samples), len(tags)
    flat = list(itertools.chain.from_iterable(map(s.get, tags) for s in samples))
    if set(map(type, flat)) <= _NUMERIC:
        return np.array(flat, dtype=np.float64).reshape(n, p)
    return np.array([as_float(v) for v in flat], dtype=np.float64).reshape(n, p)


class SampleBlock:
    """Consecutive samples of one batch, with their batch times; matrices are built once per tag list.

    Raises (on construction):
        InputError: a sample has no usable ``batch_time_h``.
    """

    def __init__(self, samples: Sequence[Mapping[str, float]]) -> None:
        self.samples: tuple[Mapping[str, float], ...] = tuple(samples)
        times = block_matrix(self.samples, (BATCH_TIME_TAG,))[:, 0]
        bad = np.flatnonzero(~(np.isfinite(times) & (times >= 0)))
        if bad.size:
            sample_batch_time(self.samples[int(bad[0])])  # raises the per-sample error
        self.times: FloatArray = times
        self._cache: dict[tuple[str, ...], FloatArray] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def matrix(self, tags: Sequence[str]) -> FloatArray:
        """The block's values of ``tags`` (rows x tags, NaN for missing); do not modify it."""
        key = tuple(tags)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = block_matrix(self.samples, key)
        return cached


@dataclass(frozen=True)
class ScoreBlock:
    """One statistic of one detector over the rows of a block.

    ``contributions`` (rows x ``tags``) are the raw per-tag contributions of each row (NaN and
    negatives count 0; a row of zeros means none), turned into sorted shares only when a row's
    ``Score`` is built. ``None``: the statistic never names tags.
    """

    statistic: str
    values: FloatArray
    limits: FloatArray
    tags: tuple[str, ...] = ()
    contributions: FloatArray | None = field(default=None, compare=False)
    # For a detector whose shares are not proportional to per-tag contributions (fixed splits, a
    # set order): builds a row's shares as its ``score_one`` does. Used instead of ``contributions``.
    explain: Callable[[int], tuple[tuple[str, float], ...]] | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def exceeds(self) -> np.ndarray:
        """Per row: the value is over the limit (NaN never is)."""
        out: np.ndarray = self.values > self.limits
        return out

    def score(self, row: int) -> Score:
        """The ``Score`` ``score_one`` would have returned for this row."""
        shares: tuple[tuple[str, float], ...] = ()
        if self.explain is not None:
            shares = self.explain(row)
        elif self.contributions is not None:
            shares = contribution_shares(self.tags, self.contributions[row])
        return Score(self.statistic, float(self.values[row]), float(self.limits[row]), shares)


@runtime_checkable
class BlockDetector(Protocol):
    """A detector that can also score a block of consecutive samples at once (same results)."""

    def score_block(self, block: SampleBlock) -> tuple[ScoreBlock, ...]:
        """Score every row of ``block`` as ``score_one`` would, in order, and keep the state after it."""
        ...


@runtime_checkable
class ExpectsBlock(Protocol):
    """A block detector that also says what it expected, row by row, in the block it scored last.

    A detector with ``expected_values`` (what it expected at the sample it scored last) is scored
    by the engine sample by sample inside a block, unless it implements this too: then it is scored
    as a block and a Finding opened at row ``i`` takes its expected values from row ``i`` here.
    """

    def expected_rows(self, tags: Sequence[str]) -> FloatArray:
        """Rows of the last ``score_block`` x ``tags``: what ``expected_values(tags)`` would have
        returned right after scoring that row (NaN where there is no expectation)."""
        ...


def full(n: int, value: float) -> FloatArray:
    """An array of ``n`` copies of ``value`` (a constant limit)."""
    return np.full(n, float(value))


def matmul_rows(x: FloatArray, m: FloatArray) -> FloatArray:
    """``x @ m`` (rows x a times a x b), each row summed in an order that does not depend on the rows.

    The products are reduced over their middle axis: numpy accumulates term after term, row by
    row (or pairwise within the row when b is 1), the same for one row as for a block, which BLAS
    does not promise (a matrix-matrix and a matrix-vector product differ in the last bit).
    Checked for every shape up to 24 x 11 and 1,120 rows; ``test_block_scoring`` checks the detectors.
    """
    out: FloatArray = np.add.reduce(x[:, :, np.newaxis] * m[np.newaxis], axis=1)
    return out


def sum_columns(x: FloatArray) -> FloatArray:
    """Row sums of ``x`` (the same per row for one row as for a block; see ``matmul_rows``)."""
    out: FloatArray = np.add.reduce(np.ascontiguousarray(x), axis=1)
    return out

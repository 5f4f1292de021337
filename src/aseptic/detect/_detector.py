"""What every detector is: the ``Detector`` protocol, its ``Score``, and the sample/batch shapes.

A *sample* is one reading of every tag at one batch time, as the twin's ``Plant.step()`` returns it:
a mapping of tag name to value that includes ``batch_time_h``. A *batch* is the ordered list of
samples of one batch. Detectors are causal: ``score_one`` only sees the samples pushed so far in
the current batch (``reset`` starts a new batch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from aseptic.errors import InputError
from aseptic.twin import TAGS, TagKind

__all__ = [
    "BATCH_TIME_TAG",
    "ONLINE_KINDS",
    "Batch",
    "Detector",
    "Score",
    "as_float",
    "batch_matrix",
    "online_tags",
    "sample_vector",
]

BATCH_TIME_TAG = "batch_time_h"

# Kinds that are measured online at every sample. Assays (NaN between lab results), setpoints
# (recipe constants, watched separately) and batch state (the alignment key) stay out of the model.
ONLINE_KINDS = frozenset({TagKind.SENSOR, TagKind.ACTUATOR, TagKind.SOFT_SENSOR})

Sample: TypeAlias = Mapping[str, float]
Batch: TypeAlias = Sequence[Mapping[str, float]]
FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Score:
    """One statistic of one detector for one sample.

    ``contributions`` are (tag, share) pairs, shares non-negative and summing to 1 (or empty when the
    statistic is zero or could not be computed), largest share first.
    """

    statistic: str
    value: float
    limit: float
    contributions: tuple[tuple[str, float], ...] = ()

    @property
    def exceeds(self) -> bool:
        """Whether the value is over the limit."""
        return self.value > self.limit


class Detector(Protocol):
    """A causal, seeded, deterministic anomaly detector over batch samples."""

    @property
    def name(self) -> str:
        """Short stable name, e.g. ``mspc``; statistics are named ``<name>.<statistic>``."""
        ...

    def fit(self, batches: Sequence[Batch]) -> None:
        """Learn normal behaviour from clean batches (raises InputError on unusable data)."""
        ...

    def reset(self) -> None:
        """Forget per-batch state: the next sample starts a new batch."""
        ...

    def score_one(self, sample: Sample) -> tuple[Score, ...]:
        """Score one sample (all tags at one batch time); missing or NaN tags are tolerated."""
        ...


def online_tags(
    batches: Sequence[Batch], *, min_finite_share: float = 0.95, checks: bool = False
) -> tuple[str, ...]:
    """The catalogue's online tags that are finite in at least ``min_finite_share`` of training samples.

    ``checks``: also the check elements (``redundant_of``), which the process models leave out.

    Raises:
        InputError: no batch, an empty batch, or no usable online tag.
    """
    if not batches or any(len(b) == 0 for b in batches):
        raise InputError(
            f"detector training needs non-empty batches (got {len(batches)} batch(es), "
            f"{sum(len(b) == 0 for b in batches)} empty)"
        )
    total = sum(len(b) for b in batches)
    chosen = []
    for spec in TAGS:
        # A check element (``redundant_of``) measures what its loop tag measures: it adds nothing to
        # a model of the process and is watched by the redundancy detector (ADR 0400).
        if spec.kind not in ONLINE_KINDS or (spec.redundant_of is not None and not checks):
            continue
        finite = sum(1 for b in batches for s in b if _is_finite(s.get(spec.name)))
        if finite >= min_finite_share * total:
            chosen.append(spec.name)
    if not chosen:
        raise InputError(
            "no online tag (sensor, actuator, soft sensor) is present in the training batches",
            hint="train on the twin's samples: dicts with tags such as temperature_k and batch_time_h",
        )
    return tuple(chosen)


_NUMERIC = frozenset({float, int, np.float64})


def sample_vector(sample: Sample, tags: Sequence[str]) -> FloatArray:
    """The values of ``tags`` in ``sample`` as a float array; missing or non-numeric values are NaN."""
    values = list(map(sample.get, tags))
    # Fast path: every value a plain number (bool is its own type, so it takes the checked path).
    if set(map(type, values)) <= _NUMERIC:
        return np.array(values, dtype=np.float64)
    return np.array([_as_float(v) for v in values], dtype=np.float64)


def batch_matrix(batch: Batch, tags: Sequence[str]) -> tuple[FloatArray, FloatArray]:
    """A batch as (batch times in hours, samples x tags values with NaN for missing).

    Raises:
        InputError: a sample has no finite ``batch_time_h``.
    """
    times = np.empty(len(batch), dtype=np.float64)
    values = np.empty((len(batch), len(tags)), dtype=np.float64)
    for i, sample in enumerate(batch):
        times[i] = sample_batch_time(sample)
        values[i] = sample_vector(sample, tags)
    return times, values


def sample_batch_time(sample: Sample) -> float:
    """The sample's batch time in hours.

    Raises:
        InputError: ``batch_time_h`` is missing, not finite or negative.
    """
    t = _as_float(sample.get(BATCH_TIME_TAG))
    if not math.isfinite(t) or t < 0:
        raise InputError(
            f"sample has no usable {BATCH_TIME_TAG} (got {sample.get(BATCH_TIME_TAG)!r})",
            hint="every sample carries hours since batch start; detectors align on it",
        )
    return t


def as_float(value: object) -> float:
    """``value`` as a float if it is a number (not a bool), else NaN."""
    return _as_float(value)


def _as_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _is_finite(value: object) -> bool:
    return math.isfinite(_as_float(value))

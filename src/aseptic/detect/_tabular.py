"""The contract of the tabular detectors: a matrix of samples x variables in, causal scores out.

The batch detectors (``MspcDetector`` and friends) align fed-batch samples on batch time. Public
process benchmarks (Tennessee Eastman, BATADAL) and continuous units have no batch time: a
*stream* is a matrix ``x`` of samples (rows, in time order) x variables (columns, named), NaN for a
missing reading. Every ``TabularDetector``

- is fitted on normal data only (``fit(x, columns)``), deterministically for its seed;
- scores a stream causally: ``score(x)`` returns, per statistic, one value per row, and the value
  of row t depends only on rows 0..t (each call starts a fresh stream: EWMA and lag state begin
  empty). High = anomalous; limits are set by the ``Ensemble`` on held-out normal data;
- tolerates missing variables (NaN): a missing reading contributes nothing and is imputed at its
  normal mean where another variable needs it as an input;
- explains itself: per statistic, each variable's non-negative contribution, and (where the model
  has one) the value each variable was expected to have;
- is serialisable without pickle: ``state()`` gives JSON-able metadata and float64 arrays,
  ``from_state`` rebuilds it (see ``save_detector``/``load_detector``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import numpy as np

from aseptic.detect._detector import FloatArray
from aseptic.errors import InputError

__all__ = [
    "Standardiser",
    "State",
    "TabularDetector",
    "check_columns",
    "check_matrix",
    "fit_standardiser",
]

State: TypeAlias = tuple[dict[str, Any], dict[str, FloatArray]]

# A variable's scale never falls below this share of (1 + |mean|): a variable constant in the
# training data (a pump that never stopped) still gives a finite, large z when it changes.
SCALE_FLOOR = 1e-3


class TabularDetector(Protocol):
    """A causal, seeded, serialisable anomaly detector over a samples x variables matrix."""

    @property
    def name(self) -> str:
        """Short stable name; statistics are reported as ``<name>.<statistic>``."""
        ...

    @property
    def statistics(self) -> tuple[str, ...]:
        """The statistics ``score`` returns (short names, without the detector name)."""
        ...

    @property
    def columns(self) -> tuple[str, ...]:
        """The variables the detector was fitted on (empty before ``fit``)."""
        ...

    def spawn(self) -> TabularDetector:
        """An unfitted detector with the same settings (for fitting on folds of the data)."""
        ...

    def fit(self, x: FloatArray, columns: Sequence[str]) -> None:
        """Learn normal behaviour from ``x`` (rows in time order). Raises InputError on unusable data."""
        ...

    def score(self, x: FloatArray) -> dict[str, FloatArray]:
        """Per statistic, one causal score per row of ``x`` (a fresh stream; high = anomalous)."""
        ...

    def contributions(self, x: FloatArray, statistic: str) -> FloatArray:
        """Per row and variable, the non-negative contribution to ``statistic`` (rows x variables)."""
        ...

    def expected(self, x: FloatArray) -> FloatArray | None:
        """Per row and variable, the value the model expected (original units), or None."""
        ...

    def state(self) -> State:
        """JSON-able metadata and float64 arrays from which ``from_state`` rebuilds the detector."""
        ...


@dataclass(frozen=True)
class Standardiser:
    """Per-variable mean and scale of the normal data: ``z = (x - mean) / scale``."""

    mean: FloatArray
    scale: FloatArray

    def z(self, x: FloatArray) -> FloatArray:
        out: FloatArray = (x - self.mean) / self.scale
        return out

    def z_filled(self, x: FloatArray) -> FloatArray:
        """z with missing values at the normal mean (0): an input other variables can be predicted from."""
        z = self.z(x)
        out: FloatArray = np.where(np.isfinite(z), z, 0.0)
        return out

    def unscale(self, z: FloatArray) -> FloatArray:
        out: FloatArray = z * self.scale + self.mean
        return out


def fit_standardiser(x: FloatArray) -> Standardiser:
    """Mean and sd of each column (NaN ignored), the sd floored at SCALE_FLOOR * (1 + |mean|)."""
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(x, axis=0)
        sd = np.nanstd(x, axis=0, ddof=1)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    floor = SCALE_FLOOR * (1.0 + np.abs(mean))
    scale = np.where(np.isfinite(sd) & (sd > floor), sd, floor)
    return Standardiser(np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64))


def check_matrix(
    x: object, *, columns: int | None = None, min_rows: int = 1, what: str = "data"
) -> FloatArray:
    """``x`` as a 2-D float64 array, checked: enough rows, the expected column count, no infinities.

    Raises:
        InputError: not 2-D, too few rows, the wrong number of columns, or an infinite value.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{what}: expected a samples x variables matrix, got {arr.ndim} dimension(s)")
    if arr.shape[0] < min_rows:
        raise InputError(f"{what}: needs at least {min_rows} samples (got {arr.shape[0]})")
    if columns is not None and arr.shape[1] != columns:
        raise InputError(
            f"{what}: has {arr.shape[1]} variables, the detector was fitted on {columns}",
            hint="score data with the same columns, in the same order, as the training data",
        )
    if np.isinf(arr).any():
        row, col = (int(v) for v in np.argwhere(np.isinf(arr))[0])
        raise InputError(f"{what}: infinite value at sample {row + 1}, variable {col + 1}")
    return arr


def check_columns(columns: Sequence[str], width: int) -> tuple[str, ...]:
    """Variable names for a matrix of ``width`` columns: unique, non-empty, one per column.

    Raises:
        InputError: wrong count, an empty name or a repeated name.
    """
    names = tuple(str(c) for c in columns)
    if len(names) != width:
        raise InputError(f"{width} variables but {len(names)} column names")
    if any(not n for n in names) or len(set(names)) != len(names):
        raise InputError(f"column names must be unique and non-empty (got {list(names)[:10]}...)")
    return names


def shares(columns: Sequence[str], contributions: FloatArray) -> tuple[tuple[str, float], ...]:
    """(variable, share) pairs from one row of raw contributions, largest first; negatives/NaN are 0."""
    c = np.where(np.isfinite(contributions), np.maximum(contributions, 0.0), 0.0)
    total = float(c.sum())
    if total <= 0:
        return ()
    order = sorted(range(len(columns)), key=lambda j: (-c[j], columns[j]))
    return tuple((columns[j], float(c[j] / total)) for j in order if c[j] > 0)


def meta_float(meta: Mapping[str, Any], key: str) -> float:
    """A finite float from model metadata (ValueError otherwise)."""
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number (got {value!r})")
    return float(value)


def meta_int(meta: Mapping[str, Any], key: str, *, minimum: int = 0) -> int:
    """An integer >= ``minimum`` from model metadata (ValueError otherwise)."""
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum} (got {value!r})")
    return value


def meta_columns(meta: Mapping[str, Any]) -> tuple[str, ...]:
    cols = meta["columns"]
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) and c for c in cols):
        raise ValueError("columns must be a non-empty list of names")
    if len(set(cols)) != len(cols):
        raise ValueError("columns repeat")
    return tuple(cols)


def array_of(arrays: Mapping[str, FloatArray], key: str, shape: tuple[int, ...]) -> FloatArray:
    """An array from model state with the expected shape (ValueError otherwise)."""
    arr = arrays[key]
    if arr.shape != shape:
        raise ValueError(f"array {key!r} has shape {arr.shape}, expected {shape}")
    return arr


class NotFitted:
    """Mixin: ``_require_fitted`` raises RuntimeError naming the detector."""

    _name: str
    _columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return self._name

    @property
    def columns(self) -> tuple[str, ...]:
        return self._columns

    def _require_fitted(self, x: FloatArray) -> FloatArray:
        if not self._columns:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(x, columns) first")
        return check_matrix(x, columns=len(self._columns), what=f"detector {self._name!r} input")

    def _unknown(self, statistic: str, known: Sequence[str]) -> ValueError:
        return ValueError(f"detector {self._name!r} has no statistic {statistic!r} (has {list(known)})")


def standardiser_state(std: Standardiser) -> dict[str, FloatArray]:
    return {"mean": std.mean, "scale": std.scale}


def standardiser_from(arrays: Mapping[str, FloatArray], p: int) -> Standardiser:
    scale = array_of(arrays, "scale", (p,))
    if not np.all(scale > 0):
        raise ValueError("array 'scale' must be positive")
    return Standardiser(array_of(arrays, "mean", (p,)), scale)

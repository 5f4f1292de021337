"""The PAA soft sensor: a PLS model on the preprocessed Raman spectrum, and the rule that uses it.

Pipeline (IndPenSim, Goldrick et al. 2019): Savitzky-Golay smoothing (order 2, window 5), first
difference, features from bins 350-500 and 800-860 of the differenced spectrum (212 features), PLS
regression with 4 latent variables on mean-centred features (scikit-learn's PLSRegression
algorithm, written out: see _fit_pls1). Every step is linear, so a fitted model is one weight per
spectrum bin plus an intercept: :meth:`PaaSoftSensor.predict` is a dot product (a couple of
microseconds), equal to scikit-learn's prediction on the features.

A model travels as canonical JSON (no pickle: the bytes are signed and verified before load).
The soft sensor in the plant (its estimator rule, calibration, quality, verified loading):
``_softsensor_loop``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from aseptic.errors import InputError
from aseptic.twin._raman import RAMAN_BINS

if TYPE_CHECKING:
    pass

__all__ = ["MODEL_FORMAT", "MODEL_FORMAT_VERSION", "PaaSoftSensor", "SpectralPreprocessing"]

FloatArray = NDArray[np.float64]

MODEL_FORMAT: Final = "aseptic.paa-soft-sensor"
MODEL_FORMAT_VERSION: Final = 1
_MAX_MODEL_BYTES: Final = 1 << 20


@dataclass(frozen=True)
class SpectralPreprocessing:
    """Smoothing, differencing and feature windows; bins are numbered from 1 as published.

    ``feature_bins`` are inclusive ranges of bins of the differenced spectrum, whose bin ``b`` is
    smoothed bin ``b + 1`` minus smoothed bin ``b``.
    """

    savgol_window: int = 5
    savgol_order: int = 2
    difference_order: int = 1
    feature_bins: tuple[tuple[int, int], ...] = ((350, 500), (800, 860))
    n_bins: int = RAMAN_BINS

    def __post_init__(self) -> None:
        problem = _preprocessing_problem(self)
        if problem is not None:
            raise ValueError(problem)

    @property
    def feature_indices(self) -> NDArray[np.intp]:
        """0-based indices of the features in the differenced spectrum."""
        return np.concatenate([np.arange(lo - 1, hi, dtype=np.intp) for lo, hi in self.feature_bins])

    @functools.cached_property
    def savgol_kernel(self) -> FloatArray:
        """Savitzky-Golay smoothing weights on a window: the least-squares polynomial's centre value."""
        half = self.savgol_window // 2
        offsets = np.arange(-half, half + 1, dtype=np.float64)
        vandermonde = offsets[:, np.newaxis] ** np.arange(self.savgol_order + 1)
        return np.asarray(np.linalg.pinv(vandermonde)[0], dtype=np.float64)

    def features(self, spectra: FloatArray) -> FloatArray:
        """The features of one spectrum (1-D) or of each row of a 2-D array of spectra.

        Smooths only interior bins (every feature is interior, see the checks), where
        Savitzky-Golay is a plain moving dot product with :attr:`savgol_kernel`.
        """
        s = np.asarray(spectra, dtype=np.float64)
        windows = np.lib.stride_tricks.sliding_window_view(s, self.savgol_window, axis=-1)
        smoothed_interior = windows @ self.savgol_kernel  # smoothed bin j + half at index j
        differenced = np.diff(smoothed_interior, n=self.difference_order, axis=-1)
        return np.ascontiguousarray(differenced[..., self.feature_indices - self.savgol_window // 2])

    def spectrum_weights(self, coef: FloatArray) -> FloatArray:
        """The weights ``w`` on the raw spectrum with ``w @ s == coef @ features(s)``.

        The adjoint of selection, differencing and (interior) Savitzky-Golay smoothing applied to
        ``coef``; exact because every feature is computed away from the spectrum's edges.
        """
        n, half = self.n_bins, self.savgol_window // 2
        weights = np.zeros(n - self.difference_order)
        weights[self.feature_indices] = coef
        for _ in range(self.difference_order):  # adjoint of d[i] = v[i + 1] - v[i]
            expanded = np.zeros(weights.size + 1)
            expanded[1:] += weights
            expanded[:-1] -= weights
            weights = expanded
        kernel = self.savgol_kernel
        spectrum = np.zeros(n)
        interior = weights[half : n - half]
        for k in range(self.savgol_window):  # smoothed[j] = sum_k kernel[k] * s[j - half + k]
            spectrum[k : k + interior.size] += kernel[k] * interior
        return spectrum


def _preprocessing_problem(p: SpectralPreprocessing) -> str | None:
    """Why ``p`` is not a pipeline the sensor can run, or None."""
    ints = (p.savgol_window, p.savgol_order, p.difference_order, p.n_bins)
    if any(type(v) is not int for v in ints):
        return "window, order, difference order and bin count must be integers"
    if not (3 <= p.savgol_window <= 51 and p.savgol_window % 2 == 1):
        return f"Savitzky-Golay window {p.savgol_window} is not an odd number from 3 to 51"
    if not 0 <= p.savgol_order < p.savgol_window:
        return f"Savitzky-Golay order {p.savgol_order} is not from 0 to window - 1"
    if not 0 <= p.difference_order <= 2:
        return f"difference order {p.difference_order} is not 0, 1 or 2"
    if p.n_bins != RAMAN_BINS:
        return f"spectra of {p.n_bins} bins; the analyser has {RAMAN_BINS}"
    if not p.feature_bins:
        return "no feature bins"
    half = p.savgol_window // 2
    # Features must not reach the first/last `half` smoothed bins, which Savitzky-Golay computes
    # by a polynomial fit to the edge window rather than by the kernel the fast path uses.
    first, last = half + 1, p.n_bins - half - p.difference_order
    previous = 0
    for pair in p.feature_bins:
        if len(pair) != 2 or any(type(v) is not int for v in pair):
            return f"feature range {pair!r} is not a pair of integers"
        lo, hi = pair
        if not first <= lo <= hi <= last or lo <= previous:
            return f"feature bins {lo}-{hi} are not increasing ranges within {first}-{last}"
        previous = hi
    return None


class PaaSoftSensor:
    """PLS regression from a Raman spectrum to PAA (mg/L).

    Built unfitted, fitted once (:meth:`fit`) or loaded (:meth:`from_bytes`); a fitted sensor never
    changes, so its :attr:`digest` identifies it.
    """

    def __init__(self, *, n_components: int = 4, preprocessing: SpectralPreprocessing | None = None) -> None:
        if type(n_components) is not int or n_components < 1:
            raise ValueError(f"n_components {n_components!r} is not a positive integer")
        self._n_components = n_components
        self._preprocessing = SpectralPreprocessing() if preprocessing is None else preprocessing
        self._fitted: _FittedPls | None = None

    @property
    def n_components(self) -> int:
        return self._n_components

    @property
    def preprocessing(self) -> SpectralPreprocessing:
        return self._preprocessing

    @property
    def is_fitted(self) -> bool:
        return self._fitted is not None

    def fit(self, spectra: FloatArray, paa_mg_per_l: FloatArray) -> PaaSoftSensor:
        """Fit the PLS model on calibration spectra (rows) and their PAA; returns this sensor.

        Raises:
            ValueError: shapes disagree, values are not finite, too few spectra, or already fitted.
        """
        if self._fitted is not None:
            raise ValueError("this soft sensor is already fitted; fit a new PaaSoftSensor()")
        x = np.asarray(spectra, dtype=np.float64)
        y = np.asarray(paa_mg_per_l, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self._preprocessing.n_bins or y.shape != (x.shape[0],):
            raise ValueError(f"fit needs (n, {self._preprocessing.n_bins}) spectra and n values of PAA")
        if x.shape[0] <= self._n_components or not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"fit needs more than {self._n_components} spectra, all finite")
        features = self._preprocessing.features(x)
        if self._n_components > features.shape[1]:
            raise ValueError(f"{self._n_components} components for {features.shape[1]} features")
        # Mean-centred, not scaled: autoscaling would inflate the noise of weak derivative bins.
        x_mean, y_mean = features.mean(axis=0), float(y.mean())
        coef = _fit_pls1(features - x_mean, y - y_mean, self._n_components)
        self._install(x_mean, y_mean, coef)
        return self

    def predict(self, spectrum: FloatArray) -> float:
        """PAA (mg/L) from one spectrum.

        Raises:
            InputError: the spectrum has the wrong shape or non-finite values.
            ValueError: the sensor is not fitted.
        """
        fitted = self._require_fitted()
        s = np.asarray(spectrum, dtype=np.float64)
        if s.shape != (self._preprocessing.n_bins,):
            raise InputError(f"Raman spectrum of shape {s.shape}; the soft sensor reads ({fitted.n_bins},)")
        value = float(s @ fitted.weights) + fitted.intercept
        if not math.isfinite(value):  # any NaN or infinity in the spectrum propagates to here
            raise InputError("Raman spectrum has non-finite intensities; no PAA prediction")
        return value

    def explain(self, spectrum: FloatArray) -> tuple[tuple[str, float], ...]:
        """Why this prediction: ``("mean of calibration", y_mean)`` then one term per feature window.

        The prediction is ``y_mean + coef . (features - x_mean)``, so splitting the dot product by
        feature window gives exact, additive contributions (mg/L) that sum to :meth:`predict`.

        Raises:
            InputError: as :meth:`predict`.
        """
        fitted = self._require_fitted()
        self.predict(spectrum)  # the same input checks
        features = self._preprocessing.features(np.asarray(spectrum, dtype=np.float64))
        terms = fitted.coef * (features - fitted.x_mean)
        parts = [("mean of calibration", fitted.y_mean)]
        start = 0
        for lo, hi in self._preprocessing.feature_bins:
            width = hi - lo + 1
            parts.append((f"bins {lo}-{hi}", float(terms[start : start + width].sum())))
            start += width
        return tuple(parts)

    def predict_many(self, spectra: FloatArray) -> FloatArray:
        """PAA (mg/L) for each row of ``spectra`` (same rule as :meth:`predict`)."""
        fitted = self._require_fitted()
        s = np.asarray(spectra, dtype=np.float64)
        if s.ndim != 2 or s.shape[1] != self._preprocessing.n_bins:
            raise InputError(f"Raman spectra of shape {s.shape}; the soft sensor reads (n, {fitted.n_bins})")
        values: FloatArray = s @ fitted.weights + fitted.intercept
        if not np.isfinite(values).all():
            raise InputError("Raman spectra have non-finite intensities; no PAA prediction")
        return values

    def to_bytes(self) -> bytes:
        """The model as canonical JSON: same model, same bytes (what gets signed)."""
        fitted = self._require_fitted()
        p = self._preprocessing
        document = {
            "format": MODEL_FORMAT,
            "version": MODEL_FORMAT_VERSION,
            "target": {"name": "PAA", "unit": "mg/L"},
            "preprocessing": {
                "n_bins": p.n_bins,
                "savgol_window": p.savgol_window,
                "savgol_order": p.savgol_order,
                "difference_order": p.difference_order,
                "feature_bins": [list(pair) for pair in p.feature_bins],
            },
            "pls": {
                "n_components": self._n_components,
                "x_mean": fitted.x_mean.tolist(),
                "y_mean": fitted.y_mean,
                "coef": fitted.coef.tolist(),
            },
        }
        return _canonical_json(document)

    @classmethod
    def from_bytes(cls, data: bytes) -> PaaSoftSensor:
        """Load a model written by :meth:`to_bytes`.

        Raises:
            InputError: truncated, garbled, non-canonical, another format or version, or values a
                sensor cannot run (wrong lengths, non-finite numbers, bad preprocessing).
        """
        return _load_model(cls, bytes(data))

    @property
    def spectrum_weights(self) -> FloatArray:
        """``w`` with ``predict(s) == w @ s + intercept`` (read-only): what an evasion attack aims along."""
        return self._require_fitted().weights

    @property
    def intercept(self) -> float:
        """The prediction for an all-zero spectrum."""
        return self._require_fitted().intercept

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`to_bytes`."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def _install(self, x_mean: FloatArray, y_mean: float, coef: FloatArray) -> None:
        weights = self._preprocessing.spectrum_weights(coef)
        intercept = y_mean - float(x_mean @ coef)
        for array in (x_mean, coef, weights):
            array.flags.writeable = False  # the cached default sensor is shared process-wide
        self._fitted = _FittedPls(x_mean, y_mean, coef, weights, intercept, self._preprocessing.n_bins)

    def _require_fitted(self) -> _FittedPls:
        if self._fitted is None:
            raise ValueError("the soft sensor is not fitted: call fit() or load one with from_bytes()")
        return self._fitted

    def __repr__(self) -> str:
        state = f"digest={self.digest[:16]}" if self._fitted is not None else "unfitted"
        return f"PaaSoftSensor(n_components={self._n_components}, {state})"


@dataclass(frozen=True)
class _FittedPls:
    x_mean: FloatArray
    y_mean: float
    coef: FloatArray
    weights: FloatArray  # on the raw spectrum
    intercept: float  # y_mean - x_mean @ coef
    n_bins: int


def _fit_pls1(x: FloatArray, y: FloatArray, n_components: int) -> FloatArray:
    """PLS1 regression coefficients of centred ``y`` on centred ``x`` (NIPALS, regression deflation).

    The algorithm of scikit-learn's ``PLSRegression(scale=False)``, which for one response needs no
    iteration; a test holds the two equal. It is written out here because importing scikit-learn
    takes one to three seconds on the plant's machines, longer than the fit itself.
    """
    x, y = x.copy(), y.copy()
    weights = np.empty((x.shape[1], n_components))
    loadings = np.empty((x.shape[1], n_components))
    y_loadings = np.empty(n_components)
    for k in range(n_components):
        w = x.T @ y
        norm = float(np.linalg.norm(w))
        if norm == 0.0:
            raise ValueError(f"PLS component {k + 1}: nothing left to explain (constant PAA or spectra?)")
        w /= norm
        t = x @ w
        tt = float(t @ t)
        p = x.T @ t / tt
        x -= np.outer(t, p)
        y_loadings[k] = float(y @ t) / tt
        y -= y_loadings[k] * t
        weights[:, k], loadings[:, k] = w, p
    rotations = weights @ np.linalg.pinv(loadings.T @ weights)
    return np.asarray(rotations @ y_loadings, dtype=np.float64)


def _canonical_json(document: dict[str, Any]) -> bytes:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii")


def _refuse_constant(name: str) -> float:
    raise InputError(f"soft sensor model: {name} is not a number a model may hold")


def _load_model(cls: type[PaaSoftSensor], data: bytes) -> PaaSoftSensor:
    where = "soft sensor model"
    if len(data) > _MAX_MODEL_BYTES:
        raise InputError(f"{where}: {len(data)} bytes, more than {_MAX_MODEL_BYTES}")
    try:
        document = json.loads(data.decode("ascii"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{where}: not JSON ({exc}); truncated or garbled?") from exc
    if not isinstance(document, dict):
        raise InputError(f"{where}: the document is not a JSON object")
    if document.get("format") != MODEL_FORMAT:
        raise InputError(f"{where}: format {_quote(document.get('format'))} is not {MODEL_FORMAT!r}")
    version = document.get("version")
    if version != MODEL_FORMAT_VERSION or type(version) is not int:
        raise InputError(
            f"{where}: format version {_quote(version)} is not supported (this build reads version "
            f"{MODEL_FORMAT_VERSION})",
            hint="load it with the Aseptic release that wrote it, or retrain",
        )
    try:
        pre, pls = document["preprocessing"], document["pls"]
        preprocessing = SpectralPreprocessing(
            savgol_window=pre["savgol_window"],
            savgol_order=pre["savgol_order"],
            difference_order=pre["difference_order"],
            feature_bins=tuple(tuple(pair) for pair in pre["feature_bins"]),
            n_bins=pre["n_bins"],
        )
        sensor = cls(n_components=pls["n_components"], preprocessing=preprocessing)
        x_mean, coef = _float_vector(pls["x_mean"]), _float_vector(pls["coef"])
        y_mean = pls["y_mean"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: missing or invalid field ({exc})") from exc
    n_features = preprocessing.feature_indices.size
    if x_mean.size != n_features or coef.size != n_features:
        raise InputError(
            f"{where}: {x_mean.size} means and {coef.size} coefficients for {n_features} features"
        )
    if type(y_mean) is not float or not math.isfinite(y_mean):
        raise InputError(f"{where}: y_mean {_quote(y_mean)} is not a finite number with a decimal point")
    sensor._install(x_mean, y_mean, coef)
    if sensor.to_bytes() != data:  # also refuses unknown or duplicate fields
        raise InputError(
            f"{where}: not in canonical form (extra fields, spacing or key order)",
            hint="only bytes written by PaaSoftSensor.to_bytes() load; its digest must be stable",
        )
    return sensor


def _quote(value: object) -> str:
    """``repr`` of a value read from untrusted bytes, cut short for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _float_vector(value: object) -> FloatArray:
    if not isinstance(value, list) or not all(type(v) is float for v in value):
        raise ValueError("expected a list of numbers with a decimal point")
    array = np.array(value, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError("non-finite number")
    return array

"""Drift and out-of-distribution detection on the soft sensor's input: PCA T2 and SPE on Raman features.

The monitor works on what the model reads: the soft sensor's own preprocessing (Savitzky-Golay,
first difference, feature windows) of each spectrum. A PCA fitted on clean training spectra spans
the directions real broth moves the features in (glucose, PAA, penicillin, fluorescence, ageing).
Hotelling's T2 measures how far a spectrum is along those directions (beyond the calibrated range);
SPE (Q, squared prediction error) measures what lies outside them. The cheapest way to move a linear
model's prediction, a perturbation along its weight vector (an evasion attack, ATLAS AML.T0043 /
AML.T0015), lies mostly outside the PCA subspace, so SPE rises with it. Limits are empirical
quantiles of the training statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aseptic.twin import PaaSoftSensor

__all__ = ["SpectralMonitor", "SpectralScore"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SpectralScore:
    """T2 and SPE of one spectrum, each with its limit."""

    t2: float
    t2_limit: float
    spe: float
    spe_limit: float

    @property
    def spe_ratio(self) -> float:
        return self.spe / self.spe_limit

    @property
    def t2_ratio(self) -> float:
        return self.t2 / self.t2_limit


class SpectralMonitor:
    """PCA T2/SPE on the soft sensor's features, fitted on clean training spectra."""

    def __init__(
        self,
        sensor: PaaSoftSensor,
        mean: FloatArray,
        loadings: FloatArray,
        variances: FloatArray,
        t2_limit: float,
        spe_limit: float,
    ) -> None:
        self._sensor = sensor
        self._mean = mean
        self._loadings = loadings  # (features, components)
        self._variances = variances
        self.t2_limit = t2_limit
        self.spe_limit = spe_limit
        # The preprocessing is linear: features = spectrum[bins] @ map, with only the bins it reads.
        pre = sensor.preprocessing
        n_features = pre.feature_indices.size
        # Row j of the map's transpose is the adjoint of the preprocessing applied to unit vector e_j.
        unit = np.eye(n_features)
        full_map = np.column_stack([pre.spectrum_weights(unit[j]) for j in range(n_features)])
        self._bins = np.flatnonzero(np.abs(full_map).sum(axis=1) > 0.0)
        self._map = np.ascontiguousarray(full_map[self._bins])

    @classmethod
    def fit(
        cls, sensor: PaaSoftSensor, spectra: FloatArray, *, n_components: int = 6, quantile: float = 0.999
    ) -> SpectralMonitor:
        """Fit on clean spectra (rows), limits at ``quantile`` of the training T2 and SPE.

        Raises:
            ValueError: fewer spectra than twice the components, non-finite spectra, or a bad quantile.
        """
        x = np.asarray(spectra, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2 * n_components or not np.isfinite(x).all():
            raise ValueError(f"fit needs at least {2 * n_components} finite spectra as rows")
        if not 0.5 < quantile < 1.0:
            raise ValueError(f"quantile {quantile} is not between 0.5 and 1")
        features = sensor.preprocessing.features(x)
        mean = features.mean(axis=0)
        centred = features - mean
        # Eigenvectors of the (features x features) covariance: a small symmetric problem.
        covariance = centred.T @ centred / (x.shape[0] - 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1][:n_components]
        loadings = np.ascontiguousarray(eigenvectors[:, order])
        variances = eigenvalues[order]
        monitor = cls(sensor, mean, loadings, variances, 1.0, 1.0)
        t2, spe = monitor._statistics(features)
        monitor.t2_limit = float(np.quantile(t2, quantile))
        monitor.spe_limit = float(np.quantile(spe, quantile))
        return monitor

    def _statistics(self, features: FloatArray) -> tuple[FloatArray, FloatArray]:
        centred = features - self._mean
        scores = centred @ self._loadings
        residual = centred - scores @ self._loadings.T
        t2 = np.asarray((scores**2 / self._variances).sum(axis=-1), dtype=np.float64)
        spe = np.asarray((residual**2).sum(axis=-1), dtype=np.float64)
        return t2, spe

    def score(self, spectrum: FloatArray) -> SpectralScore:
        """T2 and SPE of one spectrum.

        Raises:
            ValueError: the spectrum is not a finite 1-D array of the analyser's length.
        """
        s = np.asarray(spectrum, dtype=np.float64)
        if s.shape != (self._sensor.preprocessing.n_bins,) or not np.isfinite(s).all():
            raise ValueError(f"spectrum of shape {s.shape} is not a finite Raman spectrum")
        t2, spe = self._statistics((s[self._bins] @ self._map)[np.newaxis, :])
        return SpectralScore(float(t2[0]), self.t2_limit, float(spe[0]), self.spe_limit)

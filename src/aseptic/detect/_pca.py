"""PCA on aligned, standardised deviations: Hotelling T2, SPE (Q), their contributions and limits.

Missing values: the scores of a sample with missing tags are estimated by projection to the model
plane (least squares on the observed rows of the loadings), and SPE and contributions cover the
observed tags only. A sample with fewer observed tags than components + 1 cannot be scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from aseptic.detect._detector import FloatArray
from aseptic.errors import InputError

__all__ = ["Pca", "Projection", "fit_pca", "jackson_mudholkar_limit", "project_one", "project_rows"]


@dataclass(frozen=True)
class Pca:
    """Loadings (tags x components), the kept eigenvalues and the discarded ones."""

    loadings: FloatArray
    eigenvalues: FloatArray
    residual_eigenvalues: FloatArray

    @property
    def components(self) -> int:
        return int(self.eigenvalues.size)

    @property
    def explained(self) -> float:
        """Share of the total variance the kept components explain."""
        total = float(self.eigenvalues.sum() + self.residual_eigenvalues.sum())
        return float(self.eigenvalues.sum()) / total if total > 0 else 1.0


@dataclass(frozen=True)
class Projection:
    """T2, SPE and their per-tag contributions (NaN for tags not observed)."""

    t2: float
    spe: float
    t2_contributions: FloatArray
    spe_contributions: FloatArray
    residual: FloatArray


def fit_pca(z: FloatArray, explained_variance: float, *, components: int | None = None) -> Pca:
    """PCA of ``z`` (samples x tags, NaN read as the mean 0) keeping ``explained_variance`` of it.

    The number of components is the smallest that explains at least ``explained_variance`` of the
    total variance (or exactly ``components`` if given), at least 1 and at most tags - 1 (so SPE
    always has a residual space).

    Raises:
        InputError: fewer samples than tags + 1, or fewer than 2 tags.
    """
    n, p = z.shape
    if p < 2 or n <= p:
        raise InputError(f"PCA needs at least 2 tags and more samples than tags (got {n} x {p})")
    filled = np.where(np.isfinite(z), z, 0.0)
    cov = filled.T @ filled / (n - 1)
    eigenvalues, vectors = np.linalg.eigh(cov)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues = np.maximum(eigenvalues[order], 0.0)
    vectors = vectors[:, order]
    # Deterministic sign: the largest-magnitude loading of each component is positive.
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(p)])
    vectors = vectors * np.where(signs == 0, 1.0, signs)
    share = np.cumsum(eigenvalues) / max(float(eigenvalues.sum()), 1e-300)
    a = int(np.searchsorted(share, explained_variance - 1e-12) + 1) if components is None else components
    a = min(max(a, 1), p - 1)
    floor = max(float(eigenvalues[0]) * 1e-9, 1e-12)
    kept = np.maximum(eigenvalues[:a], floor)
    return Pca(vectors[:, :a].copy(), kept, eigenvalues[a:].copy())


def project_rows(pca: Pca, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """T2, SPE and the residual vectors of many rows; rows with NaN go through ``project_one``."""
    complete = np.all(np.isfinite(z), axis=1)
    t2 = np.full(z.shape[0], np.nan)
    spe = np.full(z.shape[0], np.nan)
    residual = np.full(z.shape, np.nan)
    zc = z[complete]
    scores = zc @ pca.loadings
    t2[complete] = np.sum(scores * scores / pca.eigenvalues, axis=1)
    e = zc - scores @ pca.loadings.T
    spe[complete] = np.sum(e * e, axis=1)
    residual[complete] = e
    for i in np.flatnonzero(~complete):
        one = project_one(pca, z[i])
        if one is not None:
            t2[i], spe[i], residual[i] = one.t2, one.spe, one.residual
    return t2, spe, residual


def project_one(pca: Pca, z: FloatArray) -> Projection | None:
    """T2, SPE and contributions of one standardised sample, or None if too few tags are observed."""
    observed = np.isfinite(z)
    if int(observed.sum()) < pca.components + 1:
        return None
    p_obs = pca.loadings[observed]
    z_obs = z[observed]
    scores: FloatArray
    if observed.all():
        scores = p_obs.T @ z_obs
    else:
        scores = np.asarray(np.linalg.lstsq(p_obs, z_obs, rcond=None)[0], dtype=np.float64)
    e_obs = z_obs - p_obs @ scores
    t2 = float(np.sum(scores * scores / pca.eigenvalues))
    spe = float(e_obs @ e_obs)
    t2_c = np.full(z.shape, np.nan)
    spe_c = np.full(z.shape, np.nan)
    residual = np.full(z.shape, np.nan)
    # Partial decomposition: c_j = z_j * (P Lambda^-1 t)_j sums to T2 on complete samples.
    t2_c[observed] = z_obs * (p_obs @ (scores / pca.eigenvalues))
    spe_c[observed] = e_obs * e_obs
    residual[observed] = e_obs
    return Projection(t2, spe, t2_c, spe_c, residual)


def hotelling_limit(components: int, samples: int, false_alarm_rate: float) -> float:
    """The F-distribution T2 limit for a new observation (independent samples assumed)."""
    a, n = components, samples
    f = float(stats.f.ppf(1.0 - false_alarm_rate, a, max(n - a, 1)))
    return a * (n - 1) * (n + 1) / (n * max(n - a, 1)) * f


def jackson_mudholkar_limit(residual_eigenvalues: FloatArray, false_alarm_rate: float) -> float:
    """The Jackson-Mudholkar SPE (Q) limit from the discarded eigenvalues."""
    theta1, theta2, theta3 = (float(np.sum(residual_eigenvalues**i)) for i in (1, 2, 3))
    if theta1 <= 0 or theta2 <= 0:
        return 0.0
    h0 = 1.0 - 2.0 * theta1 * theta3 / (3.0 * theta2 * theta2)
    if h0 <= 0:
        return theta1
    c = float(stats.norm.ppf(1.0 - false_alarm_rate))
    inner = c * np.sqrt(2.0 * theta2 * h0 * h0) / theta1 + 1.0 + theta2 * h0 * (h0 - 1.0) / theta1**2
    return float(theta1 * max(inner, 0.0) ** (1.0 / h0))

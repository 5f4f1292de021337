"""PCA on a samples x variables stream: Hotelling T2 and SPE (Q), static or with lagged variables.

The MSPC math of ``_pca`` (loadings, projection of incomplete samples to the model plane,
contributions) on standardised variables instead of batch-aligned deviations. ``lags = l > 0``
is dynamic PCA (Ku, Storer & Georgakis 1995): each row is augmented with the l previous rows, so
the model also captures how variables move together in time (autocorrelation, dead times). The
first l rows of a stream have no past: their missing lags are treated like missing variables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aseptic.detect._detector import FloatArray
from aseptic.detect._pca import Pca, fit_pca, project_one
from aseptic.detect._tabular import (
    NotFitted,
    Standardiser,
    State,
    array_of,
    check_columns,
    check_matrix,
    fit_standardiser,
    meta_columns,
    meta_float,
    meta_int,
    standardiser_from,
    standardiser_state,
)
from aseptic.errors import InputError

__all__ = ["PcaDetector", "lagged"]


def lagged(z: FloatArray, lags: int) -> FloatArray:
    """Rows ``[z_t, z_(t-1), ..., z_(t-lags)]``; lags before the first row are NaN (causal)."""
    if lags == 0:
        return z
    n, p = z.shape
    out = np.full((n, p * (lags + 1)), np.nan)
    for k in range(lags + 1):
        out[k:, k * p : (k + 1) * p] = z[: n - k] if k else z
    return out


class PcaDetector(NotFitted):
    """PCA T2 and SPE; statistics ``t2`` and ``spe``. ``lags > 0`` makes it dynamic PCA.

    ``components`` fixes the number of principal components; otherwise the fewest explaining
    ``explained_variance`` of the standardised (and lagged) variance are kept.
    """

    kind = "pca"
    statistics = ("t2", "spe")

    def __init__(
        self,
        *,
        components: int | None = None,
        explained_variance: float = 0.9,
        lags: int = 0,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        if components is not None and components < 1:
            raise ValueError(f"components must be at least 1 (got {components})")
        if not 0 < explained_variance <= 1:
            raise ValueError(f"explained_variance must be in (0, 1] (got {explained_variance})")
        if lags < 0:
            raise ValueError(f"lags must be non-negative (got {lags})")
        self._components = components
        self._explained = explained_variance
        self._lags = lags
        self._seed = seed
        self._name = name or ("dpca" if lags else "pca")
        self._columns: tuple[str, ...] = ()
        self._std = Standardiser(np.zeros(0), np.ones(0))
        self._pca = Pca(np.zeros((0, 0)), np.zeros(0), np.zeros(0))

    @property
    def lags(self) -> int:
        return self._lags

    def spawn(self) -> PcaDetector:
        return type(self)(
            components=self._components,
            explained_variance=self._explained,
            lags=self._lags,
            seed=self._seed,
            name=self._name,
        )

    def fit(self, x: FloatArray, columns: Sequence[str]) -> None:
        """Standardise, lag, and fit the PCA on the rows whose lags are all available.

        Raises:
            InputError: fewer than 2 variables, or fewer complete rows than lagged variables + 1.
        """
        arr = check_matrix(x, min_rows=2, what=f"training data of {self._name!r}")
        names = check_columns(columns, arr.shape[1])
        if arr.shape[1] < 2:
            raise InputError(f"PCA needs at least 2 variables (got {arr.shape[1]})")
        std = fit_standardiser(arr)
        rows = lagged(std.z_filled(arr), self._lags)[self._lags :]
        if rows.shape[0] <= rows.shape[1]:
            raise InputError(
                f"{self._name}: {rows.shape[0]} training rows for {rows.shape[1]} (lagged) variables",
                hint="train on more samples than variables x (lags + 1)",
            )
        self._pca = fit_pca(rows, self._explained, components=self._components)
        self._std = std
        self._columns = names

    def _projection(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """T2, SPE, and per-lagged-variable T2 and SPE contributions of every row."""
        arr = self._require_fitted(x)
        z = lagged(self._std.z(arr), self._lags)
        n, q = z.shape
        pca = self._pca
        t2 = np.zeros(n)
        spe = np.zeros(n)
        t2_c = np.zeros((n, q))
        spe_c = np.zeros((n, q))
        complete = np.all(np.isfinite(z), axis=1)
        zc = z[complete]
        scores = zc @ pca.loadings
        e = zc - scores @ pca.loadings.T
        t2[complete] = np.sum(scores * scores / pca.eigenvalues, axis=1)
        spe[complete] = np.sum(e * e, axis=1)
        t2_c[complete] = zc * ((scores / pca.eigenvalues) @ pca.loadings.T)
        spe_c[complete] = e * e
        for i in np.flatnonzero(~complete):
            one = project_one(pca, z[i])
            if one is None:
                continue  # too few variables observed: scores 0, nothing contributes
            t2[i], spe[i] = one.t2, one.spe
            t2_c[i] = np.nan_to_num(one.t2_contributions)
            spe_c[i] = np.nan_to_num(one.spe_contributions)
        return t2, spe, t2_c, spe_c

    def score(self, x: FloatArray) -> dict[str, FloatArray]:
        t2, spe, _, _ = self._projection(x)
        return {"t2": t2, "spe": spe}

    def contributions(self, x: FloatArray, statistic: str) -> FloatArray:
        if statistic not in self.statistics:
            raise self._unknown(statistic, self.statistics)
        _, _, t2_c, spe_c = self._projection(x)
        c = t2_c if statistic == "t2" else spe_c
        p = len(self._columns)
        # A variable's contribution is summed over its lags.
        per_var: FloatArray = np.maximum(c, 0.0).reshape(c.shape[0], self._lags + 1, p).sum(axis=1)
        return per_var

    def expected(self, x: FloatArray) -> FloatArray | None:
        """The projection of each (current) row on the model plane, in original units."""
        arr = self._require_fitted(x)
        z = lagged(self._std.z_filled(arr), self._lags)
        z = np.where(np.isfinite(z), z, 0.0)
        p = len(self._columns)
        recon = (z @ self._pca.loadings) @ self._pca.loadings.T
        return self._std.unscale(recon[:, :p])

    def state(self) -> State:
        meta = {
            "columns": list(self._columns),
            "components": self._components or 0,
            "explained_variance": self._explained,
            "lags": self._lags,
            "name": self._name,
            "seed": self._seed,
        }
        arrays = {
            **standardiser_state(self._std),
            "loadings": self._pca.loadings,
            "eigenvalues": self._pca.eigenvalues,
            "residual_eigenvalues": self._pca.residual_eigenvalues,
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, object], arrays: dict[str, FloatArray]) -> PcaDetector:
        columns = meta_columns(meta)
        lags = meta_int(meta, "lags")
        det = cls(
            components=meta_int(meta, "components") or None,
            explained_variance=meta_float(meta, "explained_variance"),
            lags=lags,
            seed=meta_int(meta, "seed"),
            name=str(meta["name"]),
        )
        p = len(columns)
        q = p * (lags + 1)
        eig = arrays["eigenvalues"]
        a = eig.shape[0] if eig.ndim == 1 else -1
        if not 1 <= a < q or not np.all(eig > 0):
            raise ValueError(f"array 'eigenvalues' must hold 1..{q - 1} positive values")
        det._pca = Pca(
            array_of(arrays, "loadings", (q, a)), eig, array_of(arrays, "residual_eigenvalues", (q - a,))
        )
        det._std = standardiser_from(arrays, p)
        det._columns = columns
        return det

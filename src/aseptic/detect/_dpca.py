"""Dynamic PCA: PCA on each sample augmented with its ``lags`` predecessors (Ku et al. 1995).

Static PCA assumes samples are independent; a process sampled every few minutes is not (a tank
level integrates its flows, a controller answers a disturbance a few samples later). Lagging the
variables lets the model's residual space catch a change in *how* variables move together in
time. The lagged matrix and its causal start are in ``_pca_tabular.lagged``.
"""

from __future__ import annotations

from aseptic.detect._pca_tabular import PcaDetector

__all__ = ["DynamicPcaDetector"]


class DynamicPcaDetector(PcaDetector):
    """PCA T2 and SPE on lagged variables (default 2 lags); statistics ``t2`` and ``spe``."""

    kind = "dpca"

    def __init__(
        self,
        *,
        components: int | None = None,
        explained_variance: float = 0.9,
        lags: int = 2,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        if lags < 1:
            raise ValueError(f"dynamic PCA needs at least 1 lag (got {lags}); use PcaDetector for 0")
        super().__init__(
            components=components,
            explained_variance=explained_variance,
            lags=lags,
            seed=seed,
            name=name or "dpca",
        )

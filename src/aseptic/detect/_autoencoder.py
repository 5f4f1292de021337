"""A nonlinear learned model: an MLP autoencoder of the standardised variables (scikit-learn, CPU).

PCA's model plane is linear; an autoencoder learns a curved one. A small multilayer perceptron
(``MLPRegressor``, tanh, bottleneck narrower than the input) is trained to reproduce each normal
sample from itself; a sample off the learned normal manifold is reproduced badly. Statistic
``recon``: the sum over variables of the squared reconstruction error, each variable's error in
units of its training-error rms (floored), so one noisy variable does not drown the others.

Training is seeded (``random_state``) and single-threaded, hence deterministic. Scoring is a plain
numpy forward pass over the stored weights: the model is saved as arrays, never pickled. A missing
variable is fed in at its normal mean and contributes no error.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from aseptic.detect._detector import FloatArray
from aseptic.detect._tabular import (
    NotFitted,
    Standardiser,
    State,
    array_of,
    check_columns,
    check_matrix,
    fit_standardiser,
    meta_columns,
    meta_int,
    standardiser_from,
    standardiser_state,
)
from aseptic.errors import InputError

__all__ = ["AutoencoderDetector"]

ERROR_FLOOR = 0.05


class AutoencoderDetector(NotFitted):
    """MLP autoencoder reconstruction error; statistic ``recon``."""

    kind = "autoencoder"
    statistics = ("recon",)

    def __init__(
        self,
        *,
        hidden: int = 32,
        bottleneck: int = 8,
        max_iter: int = 300,
        seed: int = 0,
        name: str = "autoencoder",
    ) -> None:
        if hidden < 1 or bottleneck < 1 or max_iter < 1:
            raise ValueError("hidden, bottleneck and max_iter must be at least 1")
        self._hidden = hidden
        self._bottleneck = bottleneck
        self._max_iter = max_iter
        self._seed = seed
        self._name = name
        self._columns: tuple[str, ...] = ()
        self._std = Standardiser(np.zeros(0), np.ones(0))
        self._weights: list[FloatArray] = []
        self._biases: list[FloatArray] = []
        self._error_rms: FloatArray = np.zeros(0)

    def spawn(self) -> AutoencoderDetector:
        return AutoencoderDetector(
            hidden=self._hidden,
            bottleneck=self._bottleneck,
            max_iter=self._max_iter,
            seed=self._seed,
            name=self._name,
        )

    def fit(self, x: FloatArray, columns: Sequence[str]) -> None:
        """Train the autoencoder on the standardised rows (seeded; a few seconds on 500 x 52).

        Raises:
            InputError: fewer than 2 variables or fewer than 20 samples.
        """
        arr = check_matrix(x, min_rows=20, what=f"training data of {self._name!r}")
        names = check_columns(columns, arr.shape[1])
        if arr.shape[1] < 2:
            raise InputError(f"an autoencoder needs at least 2 variables (got {arr.shape[1]})")
        std = fit_standardiser(arr)
        z = std.z_filled(arr)
        mlp = MLPRegressor(
            hidden_layer_sizes=(self._hidden, self._bottleneck, self._hidden),
            activation="tanh",
            alpha=1e-3,
            learning_rate_init=1e-3,
            max_iter=self._max_iter,
            random_state=self._seed,
            shuffle=True,
            tol=1e-5,
        )
        with warnings.catch_warnings():
            # Stopping at max_iter is the budget, not an error: the limits are calibrated on what it learned.
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(z, z)
        self._std = std
        self._weights = [np.asarray(w, dtype=np.float64) for w in mlp.coefs_]
        self._biases = [np.asarray(b, dtype=np.float64) for b in mlp.intercepts_]
        err = self._reconstruct(z) - z
        rms = np.sqrt(np.mean(err * err, axis=0))
        self._error_rms = np.where(np.isfinite(rms) & (rms > ERROR_FLOOR), rms, ERROR_FLOOR)
        self._columns = names

    def _reconstruct(self, z: FloatArray) -> FloatArray:
        h = z
        last = len(self._weights) - 1
        for i, (w, b) in enumerate(zip(self._weights, self._biases, strict=True)):
            h = h @ w + b
            if i < last:
                h = np.tanh(h)
        return h

    def _errors(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        arr = self._require_fitted(x)
        z = self._std.z(arr)
        recon = self._reconstruct(np.where(np.isfinite(z), z, 0.0))
        e = np.nan_to_num((z - recon) / self._error_rms)
        return e, recon

    def score(self, x: FloatArray) -> dict[str, FloatArray]:
        e, _ = self._errors(x)
        return {"recon": np.sum(e * e, axis=1)}

    def contributions(self, x: FloatArray, statistic: str) -> FloatArray:
        if statistic not in self.statistics:
            raise self._unknown(statistic, self.statistics)
        e, _ = self._errors(x)
        out: FloatArray = e * e
        return out

    def expected(self, x: FloatArray) -> FloatArray | None:
        _, recon = self._errors(x)
        return self._std.unscale(recon)

    def state(self) -> State:
        meta = {
            "bottleneck": self._bottleneck,
            "columns": list(self._columns),
            "hidden": self._hidden,
            "layers": len(self._weights),
            "max_iter": self._max_iter,
            "name": self._name,
            "seed": self._seed,
        }
        arrays = {**standardiser_state(self._std), "error_rms": self._error_rms}
        for i, (w, b) in enumerate(zip(self._weights, self._biases, strict=True)):
            arrays[f"w{i}"] = w
            arrays[f"b{i}"] = b
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, object], arrays: dict[str, FloatArray]) -> AutoencoderDetector:
        columns = meta_columns(meta)
        det = cls(
            hidden=meta_int(meta, "hidden", minimum=1),
            bottleneck=meta_int(meta, "bottleneck", minimum=1),
            max_iter=meta_int(meta, "max_iter", minimum=1),
            seed=meta_int(meta, "seed"),
            name=str(meta["name"]),
        )
        p = len(columns)
        sizes = [p, det._hidden, det._bottleneck, det._hidden, p]
        if meta_int(meta, "layers") != len(sizes) - 1:
            raise ValueError(f"layers must be {len(sizes) - 1}")
        det._weights = [array_of(arrays, f"w{i}", (sizes[i], sizes[i + 1])) for i in range(len(sizes) - 1)]
        det._biases = [array_of(arrays, f"b{i}", (sizes[i + 1],)) for i in range(len(sizes) - 1)]
        det._error_rms = array_of(arrays, "error_rms", (p,))
        if not np.all(det._error_rms > 0):
            raise ValueError("array 'error_rms' must be positive")
        det._std = standardiser_from(arrays, p)
        det._columns = columns
        return det

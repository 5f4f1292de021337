"""The soft sensor in the plant: the estimator rule the PAA loop reads, the calibration design the
plant's model is fitted on, its quality on known PAA, and verify-before-load of a model file.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from aseptic.twin._raman import RAMAN_BINS, RamanAnalyser
from aseptic.twin._softsensor import PaaSoftSensor

if TYPE_CHECKING:
    from aseptic.crypto import PublicKey
    from aseptic.provenance import FindingSink, LoadedArtifact

__all__ = [
    "CALIBRATION_SEED",
    "VALIDATION_SEED",
    "PaaEstimator",
    "SoftSensorQuality",
    "assess_soft_sensor",
    "default_soft_sensor",
    "load_soft_sensor",
    "simulate_calibration",
]

FloatArray = NDArray[np.float64]

# The calibration design (see simulate_calibration) and its fixed seeds.
CALIBRATION_SEED: Final = 20_190_601
VALIDATION_SEED: Final = 20_190_602
_CALIBRATION_SAMPLES: Final = 400
# glucose g/L, PAA mg/L, penicillin g/L, biomass g/L, viscosity cP, time h: the span of a batch.
_DESIGN_LOW = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
_DESIGN_HIGH = np.array([50.0, 5000.0, 40.0, 40.0, 120.0, 300.0])


class PaaEstimator:
    """The PAA value the controller sees: the published rule around a soft sensor.

    Call :meth:`update` once per 0.2 h sample with the newest spectrum, which at the controller's
    sample ``k`` is the one measured at the end of sample ``k - 1``: the estimator adds no delay of
    its own. Samples are counted from 1. For samples 1-20 the estimate is the model's prediction
    ``r_k``; from sample 21 on it is ``(r_k + e_(k-1) + e_(k-2)) / 3``, the mean of the prediction and
    the two previous *estimates* (what IndPenSim stores as its PAA prediction), a recursive filter
    with unit gain at steady state.
    """

    AVERAGE_FROM_SAMPLE: Final = 21

    def __init__(self, sensor: PaaSoftSensor) -> None:
        if not sensor.is_fitted:
            raise ValueError("PaaEstimator needs a fitted soft sensor")
        self._sensor = sensor
        self._samples = 0
        self._previous = (math.nan, math.nan)  # e_(k-1), e_(k-2)

    @property
    def sensor(self) -> PaaSoftSensor:
        return self._sensor

    @property
    def samples_seen(self) -> int:
        return self._samples

    def replace_sensor(self, sensor: PaaSoftSensor) -> None:
        """Swap the model, keeping the filter's state (a redeployment, or an attacker's model swap).

        Raises:
            ValueError: the sensor is not fitted.
        """
        if not sensor.is_fitted:
            raise ValueError("PaaEstimator needs a fitted soft sensor")
        self._sensor = sensor

    def update(self, spectrum: FloatArray) -> float:
        """The PAA estimate (mg/L) for the next sample.

        Raises:
            InputError: the spectrum is malformed (the estimator's state is then unchanged).
        """
        prediction = self._sensor.predict(spectrum)
        self._samples += 1
        last, before_last = self._previous
        if self._samples >= self.AVERAGE_FROM_SAMPLE:
            estimate = (prediction + last + before_last) / 3.0
        else:
            estimate = prediction
        self._previous = (estimate, last)
        return estimate


def simulate_calibration(seed: int, n_samples: int) -> tuple[FloatArray, FloatArray]:
    """Calibration spectra and their PAA (mg/L) from a Latin hypercube over a batch's span.

    Glucose 0-50 g/L, PAA 0-5000 mg/L, penicillin 0-40 g/L, biomass 0-40 g/L, viscosity 1-120 cP
    and batch time 0-300 h vary independently (as in a spiking design, so that the model does not
    learn the correlations of one recipe), each stratified into ``n_samples`` levels.
    """
    rng = np.random.default_rng(seed)
    strata = np.argsort(rng.random((n_samples, _DESIGN_LOW.size)), axis=0)
    unit = (strata + rng.random((n_samples, _DESIGN_LOW.size))) / n_samples
    design = _DESIGN_LOW + unit * (_DESIGN_HIGH - _DESIGN_LOW)
    analyser = RamanAnalyser(rng)
    spectra = np.empty((n_samples, RAMAN_BINS))
    for row, (glucose, paa, penicillin, biomass, viscosity, time_h) in enumerate(design.tolist()):
        spectra[row] = analyser.measure(glucose, paa, penicillin, biomass, viscosity, time_h)
    return spectra, np.ascontiguousarray(design[:, 1])


@dataclass(frozen=True)
class SoftSensorQuality:
    """How well a soft sensor predicts PAA on a set of spectra."""

    rmse_mg_per_l: float
    r2: float
    bias_mg_per_l: float
    n_samples: int


def assess_soft_sensor(
    sensor: PaaSoftSensor, spectra: FloatArray, paa_mg_per_l: FloatArray
) -> SoftSensorQuality:
    """RMSE, R^2 and mean error of ``sensor`` against known PAA."""
    truth = np.asarray(paa_mg_per_l, dtype=np.float64)
    errors = sensor.predict_many(spectra) - truth
    total = float(((truth - truth.mean()) ** 2).sum())
    residual = float((errors**2).sum())
    return SoftSensorQuality(
        rmse_mg_per_l=math.sqrt(residual / truth.size),
        r2=1.0 - residual / total if total > 0 else math.nan,
        bias_mg_per_l=float(errors.mean()),
        n_samples=int(truth.size),
    )


@functools.cache
def default_soft_sensor() -> PaaSoftSensor:
    """The plant's PAA soft sensor: fitted on the fixed-seed calibration design, once per process."""
    spectra, paa = simulate_calibration(CALIBRATION_SEED, _CALIBRATION_SAMPLES)
    return PaaSoftSensor().fit(spectra, paa)


def load_soft_sensor(
    path: Path,
    trusted_keys: Collection[PublicKey],
    *,
    now: datetime,
    sink: FindingSink | None = None,
    retired: Collection[str] = (),
    manifest: Path | None = None,
) -> LoadedArtifact[PaaSoftSensor]:
    """Load a soft sensor model file only after its signed manifest checks out (verify-before-load).

    The bytes that are hashed are the bytes parsed; a refusal is passed to ``sink`` (the ledger) as a
    Finding before it is raised. ``.value`` is the sensor, ``.manifest`` what its manifest says.

    Raises:
        InputError, ConfigError, SignatureError, IntegrityError: see ``aseptic.provenance.load_verified``;
            a verified file that is not a canonical soft sensor model is an ``InputError``.
    """
    from aseptic.provenance import ArtifactKind, load_verified

    return load_verified(
        path,
        trusted_keys,
        kind=ArtifactKind.MODEL,
        decode=PaaSoftSensor.from_bytes,
        now=now,
        sink=sink,
        retired=retired,
        manifest=manifest,
        purpose="PAA soft sensor in the control loop",
    )

"""The attacks on the soft sensor that the guard is measured against (run on the twin, never on a plant).

- ``poisoned_soft_sensor``: trained on calibration data whose labels were poisoned (ATLAS AML.T0020):
  PAA in a band around the setpoint is labelled higher than it is, so the model over-reads there and
  the loop under-feeds PAA. Its manifest can be validly signed: poisoning happens before signing.
- ``replacement_soft_sensor``: an attacker's model (AML.T0018) that reads ``scale`` times the truth;
  swapped into the running loop with ``Plant.replace_soft_sensor``.
- ``adversarial_drift``: a perturbation of each Raman spectrum along the model's weight vector, the
  smallest change that moves the prediction by ``shift_mg_per_l``, ramped in from ``start_h`` over
  ``ramp_h`` (AML.T0043 Craft Adversarial Data, to evade the model: AML.T0015).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from aseptic.twin import PaaSoftSensor, SpectrumTamper, simulate_calibration

__all__ = ["adversarial_drift", "poisoned_soft_sensor", "replacement_soft_sensor"]

FloatArray = NDArray[np.float64]
_CALIBRATION_SEED = 20_190_601  # the plant's calibration design (docs/adr/0010)
_CALIBRATION_SAMPLES = 400


def poisoned_soft_sensor(
    *,
    band_mg_per_l: tuple[float, float] = (600.0, 1800.0),
    shift_mg_per_l: float = 400.0,
    seed: int = _CALIBRATION_SEED,
) -> PaaSoftSensor:
    """A soft sensor fitted on the calibration design with labels in ``band`` raised by ``shift``."""
    spectra, paa = simulate_calibration(seed, _CALIBRATION_SAMPLES)
    low, high = band_mg_per_l
    poisoned = np.where((paa >= low) & (paa <= high), paa + shift_mg_per_l, paa)
    return PaaSoftSensor().fit(spectra, poisoned)


def replacement_soft_sensor(*, scale: float = 0.7, seed: int = _CALIBRATION_SEED + 7) -> PaaSoftSensor:
    """An attacker's soft sensor that reads ``scale`` x the true PAA (fitted on scaled labels)."""
    spectra, paa = simulate_calibration(seed, _CALIBRATION_SAMPLES)
    return PaaSoftSensor().fit(spectra, scale * paa)


def adversarial_drift(
    sensor: PaaSoftSensor, *, start_h: float, ramp_h: float, shift_mg_per_l: float
) -> SpectrumTamper:
    """A spectrum tamper moving ``sensor``'s prediction by ``shift`` (ramped in linearly over ``ramp_h``)."""
    if ramp_h <= 0:
        raise ValueError(f"ramp_h {ramp_h} must be positive")
    weights = np.array(sensor.spectrum_weights)
    direction = weights / float(weights @ weights)

    def tamper(time_h: float, spectrum: FloatArray) -> FloatArray:
        if time_h < start_h:
            return spectrum
        fraction = min(1.0, (time_h - start_h) / ramp_h)
        return np.asarray(spectrum + fraction * shift_mg_per_l * direction, dtype=np.float64)

    return tamper

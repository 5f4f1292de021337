"""The spectral monitor: quiet on clean spectra, loud on an evasion perturbation along the model's weights."""

from __future__ import annotations

import numpy as np
import pytest

from aseptic.guard import SpectralMonitor
from aseptic.twin import default_soft_sensor, simulate_calibration


def test_clean_validation_spectra_stay_within_the_limits(monitor: SpectralMonitor) -> None:
    spectra, _ = simulate_calibration(20_190_602, 200)
    over = [max(s.spe_ratio, s.t2_ratio) > 1.0 for s in map(monitor.score, spectra)]
    assert sum(over) <= 2  # limits at the 99.9 % quantile of training


def test_minimum_norm_evasion_of_300_mg_per_l_is_out_of_distribution(monitor: SpectralMonitor) -> None:
    sensor = default_soft_sensor()
    spectra, _ = simulate_calibration(20_190_602, 50)
    w = np.array(sensor.spectrum_weights)
    attacked = spectra - 300.0 * w / float(w @ w)
    assert np.allclose(sensor.predict_many(attacked), sensor.predict_many(spectra) - 300.0)
    assert all(monitor.score(s).spe_ratio > 1.0 for s in attacked)


def test_malformed_input_is_refused(monitor: SpectralMonitor) -> None:
    with pytest.raises(ValueError, match="not a finite Raman spectrum"):
        monitor.score(np.full(10, 1.0))
    with pytest.raises(ValueError, match="at least"):
        SpectralMonitor.fit(default_soft_sensor(), np.ones((3, 2200)))

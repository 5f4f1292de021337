"""What the guard and verify-before-load need from the soft sensor and the plant: explanations,
an injectable or swapped model, spectrum attacks, and the assay-based fallback of the PAA loop."""

from __future__ import annotations

import numpy as np
import pytest

from aseptic.errors import InputError
from aseptic.twin import PaaEstimator, PaaSoftSensor, Plant, default_soft_sensor, simulate_calibration
from aseptic.twin._control import assay_paa_feed

pytestmark = pytest.mark.requirement("ASE-TWIN", "ASE-PROVENANCE")


def test_explanation_terms_add_up_to_the_prediction() -> None:
    sensor = default_soft_sensor()
    spectra, _ = simulate_calibration(20_190_602, 5)
    for spectrum in spectra:
        terms = sensor.explain(spectrum)
        assert [label for label, _ in terms] == ["mean of calibration", "bins 350-500", "bins 800-860"]
        assert sum(value for _, value in terms) == pytest.approx(sensor.predict(spectrum), abs=1e-6)
    with pytest.raises(InputError):
        sensor.explain(np.full(2200, np.nan))


def test_prediction_is_the_weights_dot_the_spectrum() -> None:
    sensor = default_soft_sensor()
    spectrum = simulate_calibration(7, 1)[0][0]
    assert float(sensor.spectrum_weights @ spectrum) + sensor.intercept == pytest.approx(
        sensor.predict(spectrum)
    )
    assert not sensor.spectrum_weights.flags.writeable


def test_replacing_the_model_keeps_the_estimator_state() -> None:
    other = PaaSoftSensor().fit(*simulate_calibration(99, 100))
    estimator = PaaEstimator(default_soft_sensor())
    spectrum = simulate_calibration(5, 1)[0][0]
    estimator.update(spectrum)
    estimator.replace_sensor(other)
    assert estimator.sensor is other and estimator.samples_seen == 1
    with pytest.raises(ValueError, match="fitted"):
        estimator.replace_sensor(PaaSoftSensor())


def test_plant_runs_the_given_soft_sensor_and_exposes_what_the_guard_reads() -> None:
    other = PaaSoftSensor().fit(*simulate_calibration(99, 100))
    seen: list[float] = []

    def tamper(time_h: float, spectrum: np.ndarray) -> np.ndarray:
        seen.append(time_h)
        return spectrum + 1.0

    plant = Plant(4, duration_h=2.0, soft_sensor=other, spectrum_tamper=tamper)
    assert plant.last_spectrum is None
    plant.step()
    assert plant.soft_sensor_digest == other.digest
    assert seen == [pytest.approx(0.2)]
    assert plant.last_spectrum is not None and plant.last_spectrum.shape == (2200,)
    plant.replace_soft_sensor(default_soft_sensor())
    assert plant.soft_sensor_digest == default_soft_sensor().digest
    with pytest.raises(InputError, match="does not run on the soft sensor"):
        Plant(4, duration_h=2.0, paa_control="true").replace_soft_sensor(other)


def test_assay_fallback_holds_between_reports_and_trims_on_each() -> None:
    feed = np.array([10.0, 10.0, 10.0])
    nan = np.nan
    held = assay_paa_feed(feed, np.array([nan, nan, nan]), np.array([nan, 1000.0, nan]), np.full(3, 1200.0))
    assert held.tolist() == [10.0, 10.0, 10.0]
    trimmed = assay_paa_feed(
        feed, np.array([1000.0, 1000.0, 1400.0]), np.array([nan, 1100.0, nan]), np.full(3, 1200.0)
    )
    assert trimmed[0] > 10.0  # below the setpoint: more feed
    assert trimmed[1] > trimmed[0]  # and falling since the last report: more still
    assert trimmed[2] < 10.0  # above the setpoint: less


def test_fallback_mode_keeps_paa_in_the_production_window() -> None:
    plant = Plant(12, duration_h=120.0)
    plant_paa = []
    while not plant.finished:
        if plant.time_h >= 40.0:
            plant.set_paa_fallback(True)
        plant.step()
        if plant.time_h > 40.0:
            plant_paa.append(plant.true_state()["paa_mg_per_l"])
    assert plant.paa_fallback
    # PAA_CRIT_P (200 mg/L) and PAA_CRIT_X (2400 mg/L) bound the window where production runs.
    assert 200.0 < min(plant_paa) and max(plant_paa) < 2400.0

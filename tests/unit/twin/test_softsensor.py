"""The PAA soft sensor: equal to scikit-learn, accurate enough for the loop, safe to load from bytes."""

from __future__ import annotations

import hashlib
import json
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import savgol_filter
from sklearn.cross_decomposition import PLSRegression

from aseptic.errors import InputError
from aseptic.twin._raman import RamanAnalyser
from aseptic.twin._softsensor import MODEL_FORMAT_VERSION, PaaSoftSensor, SpectralPreprocessing
from aseptic.twin._softsensor_loop import (
    CALIBRATION_SEED,
    VALIDATION_SEED,
    PaaEstimator,
    assess_soft_sensor,
    default_soft_sensor,
    simulate_calibration,
)

pytestmark = pytest.mark.requirement("ASE-TWIN")

# Accurate enough to hold PAA at 1200 mg/L: a model without the first difference (85 mg/L), with
# one latent variable (185 mg/L) or trained on shuffled labels (1590 mg/L) fails it.
RMSE_BAR_MG_PER_L = 50.0
R2_BAR = 0.999


@pytest.fixture(scope="module")
def calibration() -> tuple[np.ndarray, np.ndarray]:
    return simulate_calibration(CALIBRATION_SEED, 400)


@pytest.fixture(scope="module")
def validation() -> tuple[np.ndarray, np.ndarray]:
    return simulate_calibration(VALIDATION_SEED, 300)


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return default_soft_sensor().to_bytes()


def scipy_features(spectra: np.ndarray) -> np.ndarray:
    """The published pipeline written independently with scipy: SG(2, 5), first difference, bins."""
    differenced = np.diff(savgol_filter(spectra, 5, 2, axis=-1), axis=-1)
    bins = np.r_[350:501, 800:861] - 1  # 1-based inclusive bins of the differenced spectrum
    assert bins.size == 212
    return differenced[:, bins]


def compact(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def edited(data: bytes, change: Any) -> bytes:
    """``data`` parsed, changed by ``change(document)``, written back canonically."""
    document = json.loads(data)
    change(document)
    return compact(document)


# --- equal to scikit-learn ----------------------------------------------------------------------


def test_preprocessing_equals_scipy_savgol_pipeline(validation: tuple[np.ndarray, np.ndarray]) -> None:
    spectra, _ = validation
    features = SpectralPreprocessing().features(spectra)
    assert features.shape == (300, 212)
    assert np.allclose(features, scipy_features(spectra), rtol=1e-12, atol=1e-8)


def test_fast_predict_equals_sklearn(
    calibration: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray]
) -> None:
    pls = PLSRegression(n_components=4, scale=False).fit(scipy_features(calibration[0]), calibration[1])
    spectra, _ = validation
    expected = pls.predict(scipy_features(spectra)).ravel()
    sensor = default_soft_sensor()
    assert np.allclose([sensor.predict(s) for s in spectra], expected, rtol=1e-9, atol=1e-6)
    assert np.allclose(sensor.predict_many(spectra), expected, rtol=1e-9, atol=1e-6)
    loaded = PaaSoftSensor.from_bytes(sensor.to_bytes())
    assert np.allclose(loaded.predict_many(spectra), expected, rtol=1e-9, atol=1e-6)


# --- accurate enough to close the loop ----------------------------------------------------------


def test_default_model_is_accurate_enough_to_close_the_paa_loop(
    validation: tuple[np.ndarray, np.ndarray],
) -> None:
    quality = assess_soft_sensor(default_soft_sensor(), *validation)
    assert quality.n_samples == 300
    assert quality.rmse_mg_per_l < RMSE_BAR_MG_PER_L
    assert quality.r2 > R2_BAR
    assert abs(quality.bias_mg_per_l) < 10.0
    # The numbers recorded in docs/adr/0010-raman-soft-sensor.md:
    assert quality.rmse_mg_per_l == pytest.approx(23.7, abs=0.05)
    assert quality.r2 == pytest.approx(0.99973, abs=5e-6)


@pytest.mark.parametrize(
    ("what", "sensor"),
    [
        ("no first difference", PaaSoftSensor(preprocessing=SpectralPreprocessing(difference_order=0))),
        ("one latent variable", PaaSoftSensor(n_components=1)),
    ],
)
def test_degraded_pipeline_fails_the_quality_bar(
    what: str,
    sensor: PaaSoftSensor,
    calibration: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
) -> None:
    quality = assess_soft_sensor(sensor.fit(*calibration), *validation)
    assert quality.rmse_mg_per_l > RMSE_BAR_MG_PER_L, what


def test_poisoned_calibration_fails_the_quality_bar(
    calibration: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray]
) -> None:
    spectra, paa = calibration
    poisoned = PaaSoftSensor().fit(spectra, np.random.default_rng(0).permutation(paa))
    quality = assess_soft_sensor(poisoned, *validation)
    assert quality.rmse_mg_per_l > 10 * RMSE_BAR_MG_PER_L and quality.r2 < 0.5


@pytest.mark.parametrize("paa", [0.0, 300.0, 1200.0, 2500.0, 4000.0, 5000.0])
def test_prediction_tracks_paa_across_range(paa: float) -> None:
    # Broth along a batch: the model must not read penicillin, cells or time as PAA.
    sensor = default_soft_sensor()
    analyser = RamanAnalyser(np.random.default_rng(int(paa)))
    for glucose, penicillin, biomass, viscosity, time_h in [
        (1.0, 0.0, 0.5, 4.0, 0.2),
        (0.003, 2.3, 13.9, 40.0, 40.0),
        (0.001, 17.9, 22.8, 90.0, 120.0),
        (13.8, 25.4, 20.3, 100.0, 217.0),
    ]:
        spectra = [analyser.measure(glucose, paa, penicillin, biomass, viscosity, time_h) for _ in range(10)]
        mean = np.mean([sensor.predict(s) for s in spectra])
        assert mean == pytest.approx(paa, abs=50.0), (penicillin, time_h)


def test_default_soft_sensor_is_cached_and_reproducible(calibration: tuple[np.ndarray, np.ndarray]) -> None:
    assert default_soft_sensor() is default_soft_sensor()
    assert PaaSoftSensor().fit(*calibration).to_bytes() == default_soft_sensor().to_bytes()


# --- misuse and malformed spectra ---------------------------------------------------------------


def test_refitting_a_fitted_sensor_is_refused(calibration: tuple[np.ndarray, np.ndarray]) -> None:
    sensor = PaaSoftSensor().fit(*calibration)
    digest = sensor.digest
    with pytest.raises(ValueError, match="already fitted"):
        sensor.fit(calibration[0], calibration[1][::-1].copy())
    assert sensor.digest == digest == hashlib.sha256(sensor.to_bytes()).hexdigest()


def test_unfitted_sensor_does_not_predict() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        PaaSoftSensor().predict(np.zeros(2200))
    with pytest.raises(ValueError, match="needs a fitted"):
        PaaEstimator(PaaSoftSensor())


@pytest.mark.parametrize("shape", [(2199,), (2201,), (1, 2200), ()])
def test_spectrum_of_wrong_shape_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="shape"):
        default_soft_sensor().predict(np.ones(shape))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_spectrum_with_non_finite_bin_is_refused(
    bad: float, validation: tuple[np.ndarray, np.ndarray]
) -> None:
    spectrum = validation[0][0].copy()
    spectrum[425] = bad  # inside the first feature window
    with pytest.raises(InputError, match="non-finite"):
        default_soft_sensor().predict(spectrum)


def test_shared_default_model_cannot_be_changed_in_place() -> None:
    # default_soft_sensor() is one object per process: no caller may alter its arrays.
    fitted = default_soft_sensor()._fitted
    assert fitted is not None
    for array in (fitted.weights, fitted.coef, fitted.x_mean):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0


# --- serialisation -------------------------------------------------------------------------------


def test_model_bytes_round_trip(model_bytes: bytes, validation: tuple[np.ndarray, np.ndarray]) -> None:
    loaded = PaaSoftSensor.from_bytes(model_bytes)
    assert loaded.to_bytes() == model_bytes
    assert loaded.digest == default_soft_sensor().digest == hashlib.sha256(model_bytes).hexdigest()
    assert np.array_equal(
        loaded.predict_many(validation[0]), default_soft_sensor().predict_many(validation[0])
    )
    document = json.loads(model_bytes)
    assert document["format"] == "aseptic.paa-soft-sensor" and document["version"] == 1
    assert document["preprocessing"]["feature_bins"] == [[350, 500], [800, 860]]
    assert len(document["pls"]["coef"]) == 212 and document["pls"]["n_components"] == 4


def test_truncated_model_bytes_are_refused(model_bytes: bytes) -> None:
    for length in range(len(model_bytes)):
        with pytest.raises(InputError, match="not JSON|not a JSON object"):
            PaaSoftSensor.from_bytes(model_bytes[:length])


@pytest.mark.parametrize(
    "garbled",
    [
        b"\x00\xff\xfe garbage",
        b"\x80\x04\x95",  # the start of a pickle
        b"[1, 2, 3]",
        b'"aseptic.paa-soft-sensor"',
        b"{}",
    ],
)
def test_garbled_model_bytes_are_refused(garbled: bytes) -> None:
    with pytest.raises(InputError, match="soft sensor model"):
        PaaSoftSensor.from_bytes(garbled)


def test_pickled_model_is_refused() -> None:
    with pytest.raises(InputError, match="not JSON"):
        PaaSoftSensor.from_bytes(pickle.dumps(default_soft_sensor()))


@pytest.mark.parametrize("version", [0, 2, MODEL_FORMAT_VERSION + 1, "1", 1.0, True, None])
def test_model_bytes_from_other_version_are_refused(model_bytes: bytes, version: object) -> None:
    data = edited(model_bytes, lambda d: d.update(version=version))
    with pytest.raises(InputError, match="format version .* is not supported") as caught:
        PaaSoftSensor.from_bytes(data)
    assert caught.value.hint


def test_model_bytes_of_another_format_are_refused(model_bytes: bytes) -> None:
    data = edited(model_bytes, lambda d: d.update(format="aseptic.glucose-soft-sensor"))
    with pytest.raises(InputError, match="format 'aseptic.glucose-soft-sensor'"):
        PaaSoftSensor.from_bytes(data)


@pytest.mark.parametrize(
    ("what", "change", "message"),
    [
        ("short coef", lambda d: d["pls"]["coef"].pop(), "211 coefficients for 212 features"),
        ("integer y_mean", lambda d: d["pls"].update(y_mean=2500), "y_mean"),
        ("string coef", lambda d: d["pls"]["coef"].__setitem__(3, "0.1"), "invalid field"),
        ("no pls", lambda d: d.pop("pls"), "invalid field"),
        ("edge features", lambda d: d["preprocessing"].update(feature_bins=[[1, 500]]), "within 3-2197"),
        ("even window", lambda d: d["preprocessing"].update(savgol_window=4), "odd number"),
        ("other analyser", lambda d: d["preprocessing"].update(n_bins=1024), "1024 bins"),
        ("zero components", lambda d: d["pls"].update(n_components=0), "n_components"),
    ],
)
def test_model_bytes_a_sensor_cannot_run_are_refused(
    model_bytes: bytes, what: str, change: Any, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        PaaSoftSensor.from_bytes(edited(model_bytes, change))


def test_model_bytes_with_nan_are_refused(model_bytes: bytes) -> None:
    text = model_bytes.decode()
    first = json.loads(text)["pls"]["coef"][0]
    data = text.replace(repr(first), "NaN", 1).encode()
    with pytest.raises(InputError, match="NaN is not a number"):
        PaaSoftSensor.from_bytes(data)


@pytest.mark.parametrize(
    ("what", "rewrite"),
    [
        ("pretty-printed", lambda d: json.dumps(d, sort_keys=True, indent=1).encode()),
        ("keys unsorted", lambda d: json.dumps(dict(reversed(d.items())), separators=(",", ":")).encode()),
        ("extra field", lambda d: compact({**d, "trained_by": "x"})),
        ("other target", lambda d: compact({**d, "target": {"name": "PAA", "unit": "g/L"}})),
    ],
)
def test_non_canonical_model_bytes_are_refused(model_bytes: bytes, what: str, rewrite: Any) -> None:
    # Two encodings of one model would give two digests: only the canonical one loads.
    data = rewrite(json.loads(model_bytes))
    assert data != model_bytes
    with pytest.raises(InputError, match="canonical"):
        PaaSoftSensor.from_bytes(data)


def test_duplicate_field_is_refused(model_bytes: bytes) -> None:
    data = model_bytes.replace(b'{"format":', b'{"format":"x","format":', 1)
    with pytest.raises(InputError, match="canonical"):
        PaaSoftSensor.from_bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_changed_byte_is_refused_or_loads_exactly_what_it_says(
    model_bytes: bytes, position: int, value: int
) -> None:
    # A changed digit can still be a valid model (the signature catches that); anything else is an
    # InputError, never another exception, and what loads re-encodes to the very same bytes.
    data = bytearray(model_bytes)
    data[position % len(data)] = value
    try:
        loaded = PaaSoftSensor.from_bytes(bytes(data))
    except InputError:
        return
    assert loaded.to_bytes() == bytes(data)


# --- the estimator's published rule --------------------------------------------------------------


def test_estimator_uses_the_prediction_alone_for_the_first_20_samples(
    validation: tuple[np.ndarray, np.ndarray],
) -> None:
    sensor = default_soft_sensor()
    estimator = PaaEstimator(sensor)
    spectra = validation[0][:20]
    assert [estimator.update(s) for s in spectra] == [sensor.predict(s) for s in spectra]
    assert estimator.samples_seen == 20


def test_estimator_averages_with_its_two_previous_estimates_from_sample_21(
    validation: tuple[np.ndarray, np.ndarray],
) -> None:
    sensor = default_soft_sensor()
    estimator = PaaEstimator(sensor)
    spectra = validation[0][:40]
    estimates = [estimator.update(s) for s in spectra]
    raw = [sensor.predict(s) for s in spectra]
    for k in range(20, 40):  # sample k + 1
        expected = (raw[k] + estimates[k - 1] + estimates[k - 2]) / 3.0
        assert estimates[k] == pytest.approx(expected, rel=1e-12)
    assert estimates[20] != raw[20]


def test_estimator_settles_on_the_true_paa_after_a_step() -> None:
    analyser = RamanAnalyser(np.random.default_rng(21))
    estimator = PaaEstimator(default_soft_sensor())
    for _ in range(30):
        estimator.update(analyser.measure(1.0, 800.0, 10.0, 20.0, 60.0, 80.0))
    settled = [estimator.update(analyser.measure(1.0, 1600.0, 10.0, 20.0, 60.0, 82.0)) for _ in range(30)]
    assert settled[0] < 1400.0, "the average lags a step"
    assert np.mean(settled[-10:]) == pytest.approx(1600.0, abs=40.0)


def test_malformed_spectrum_leaves_the_estimator_unchanged(validation: tuple[np.ndarray, np.ndarray]) -> None:
    spectra = validation[0][:25]
    clean, hit = PaaEstimator(default_soft_sensor()), PaaEstimator(default_soft_sensor())
    for k, spectrum in enumerate(spectra):
        if k == 22:
            with pytest.raises(InputError):
                hit.update(np.full(2200, np.nan))
        assert hit.update(spectrum) == clean.update(spectrum)
    assert hit.samples_seen == clean.samples_seen == 25

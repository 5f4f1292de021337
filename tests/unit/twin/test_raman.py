"""The Raman analyser: seeded, peaks where published, broad drift, a smoothed random walk as noise."""

from __future__ import annotations

import numpy as np
import pytest

from aseptic.twin._raman import RAMAN_BINS, RamanAnalyser

pytestmark = pytest.mark.requirement("ASE-TWIN")

# glucose g/L, PAA mg/L, penicillin g/L, biomass g/L, viscosity cP, time h: mid-batch broth.
BROTH = (2.0, 1200.0, 20.0, 22.0, 60.0, 120.0)


def scan(seed: int, *broth: float) -> np.ndarray:
    return RamanAnalyser(np.random.default_rng(seed)).measure(*(broth or BROTH))


def response(index: int, low: float, high: float) -> np.ndarray:
    """The noise-free change of the spectrum when one input goes from low to high (same noise)."""
    a, b = list(BROTH), list(BROTH)
    a[index], b[index] = low, high
    return scan(7, *b) - scan(7, *a)


def test_spectrum_is_2200_finite_float64_counts() -> None:
    spectrum = scan(0)
    assert spectrum.shape == (RAMAN_BINS,) == (2200,)
    assert spectrum.dtype == np.float64
    assert np.isfinite(spectrum).all() and spectrum.min() > 0.0


def test_same_seed_same_spectrum() -> None:
    assert np.array_equal(scan(3), scan(3))


def test_different_seeds_give_different_noise() -> None:
    assert not np.allclose(scan(3), scan(4))


def test_successive_scans_draw_fresh_noise() -> None:
    analyser = RamanAnalyser(np.random.default_rng(5))
    first, second = analyser.measure(*BROTH), analyser.measure(*BROTH)
    assert not np.allclose(first, second)


# bin -> counts for seed 0 and BROTH; checked by hand at bin 419: background 273,654 + PAA 26,400
# + fluorescence 14,150 - ageing 41,770 + noise.
KNOWN_ANSWER = {
    1: 155400.01521515026,
    219: 196505.5096288489,
    419: 273162.90702199476,
    800: 444409.1959542559,
    839: 438554.2971872821,
    1200: 601081.5089183581,
    2200: 593567.6191882233,
}


def test_spectrum_matches_known_answer() -> None:
    # Pins the simulator: a silent change would also change the default soft sensor's calibration.
    spectrum = scan(0)
    assert spectrum[[0, 218, 418, 799, 838, 1199, 2199]] == pytest.approx(
        [KNOWN_ANSWER[b] for b in (1, 219, 419, 800, 839, 1200, 2200)], rel=1e-9
    )


@pytest.mark.parametrize(
    ("name", "index", "high", "bins"),
    [
        ("glucose", 0, 12.0, (219, 639, 1053)),
        ("PAA", 1, 2400.0, (419, 839)),
        ("penicillin", 2, 30.0, (800, 1200)),
    ],
)
def test_analyte_peaks_sit_at_published_bins(
    name: str, index: int, high: float, bins: tuple[int, ...]
) -> None:
    delta = response(index, BROTH[index], high)
    for b in bins:
        window = delta[b - 1 - 40 : b - 1 + 41]
        assert abs(int(np.argmax(window)) - 40) <= 1, f"{name} peak not at bin {b}"
        assert window[40] > 0.0


def test_paa_peaks_scale_linearly_with_concentration() -> None:
    one, two = response(1, 0.0, 1000.0), response(1, 0.0, 2000.0)
    assert two[[418, 838]] == pytest.approx(2.0 * one[[418, 838]], rel=1e-9)
    assert one[418] == pytest.approx(22_000.0, rel=1e-6)  # 22 counts per mg/L at bin 419


@pytest.mark.parametrize(("name", "index", "high"), [("biomass", 3, 35.0), ("viscosity", 4, 110.0)])
def test_broth_drift_is_broad_and_grows_with_cells_and_viscosity(name: str, index: int, high: float) -> None:
    delta = response(index, BROTH[index], high)
    assert (delta > 0.0).all(), f"more {name} must raise the fluorescence background everywhere"
    curvature = np.abs(np.diff(delta, n=2)).max()
    assert curvature < 1e-3 * np.abs(delta).max(), f"{name} drift must be broad, without peaks"


def test_background_fades_over_the_batch() -> None:
    delta = response(5, 0.0, 300.0)
    assert (delta < 0.0).all()
    assert np.abs(np.diff(delta, n=2)).max() < 1e-3 * np.abs(delta).max()


def test_noise_is_a_random_walk_smoothed_over_25_bins() -> None:
    analyser = RamanAnalyser(np.random.default_rng(11))
    scans = np.array([analyser.measure(*BROTH) for _ in range(400)])
    noise = scans - scans.mean(axis=0)
    spread = noise.std(axis=0)
    # A walk of +-400-count steps has spread 400 sqrt(n) after n steps (~i + 13 at 0-based bin i).
    for lo in (50, 1900):
        expected = 400.0 * np.sqrt(np.arange(lo, lo + 100) + 13.0).mean()
        assert spread[lo : lo + 100].mean() == pytest.approx(expected, rel=0.1)
    step = np.diff(noise, axis=1)
    # Steps of +-400 counts averaged over 25 bins: each bin-to-bin change is 25 steps / 25.
    assert step.std() == pytest.approx(400.0 / 5.0, rel=0.05)
    lag1 = np.mean(step[:, 1:] * step[:, :-1]) / np.mean(step * step)
    assert lag1 == pytest.approx(24.0 / 25.0, abs=0.01), "a 25-point moving average correlates steps"


def test_negative_concentrations_read_as_zero() -> None:
    assert np.array_equal(
        scan(2, -0.001, -5.0, -0.1, -1.0, -2.0, 10.0), scan(2, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0)
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_broth_values_are_refused(bad: float) -> None:
    analyser = RamanAnalyser(np.random.default_rng(0))
    with pytest.raises(ValueError, match="not a finite number"):
        analyser.measure(1.0, bad, 1.0, 1.0, 1.0, 1.0)


def test_time_before_the_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="before the start"):
        RamanAnalyser(np.random.default_rng(0)).measure(1.0, 1.0, 1.0, 1.0, 1.0, -0.2)

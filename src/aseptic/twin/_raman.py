"""The in-situ Raman analyser (AT-203): a synthetic 2200-bin spectrum of the broth.

After the IndPenSim Raman simulation (Goldrick et al. 2019): a spectrum is a background, a broad
drift that depends on biomass, penicillin, viscosity and batch time, Gaussian peaks for glucose,
phenylacetic acid (PAA) and penicillin scaled by their concentrations, and a random walk along the
bin axis smoothed by a 25-point moving average. The original's measured reference spectrum is not
available, so the background is synthesised here (smooth, fluorescence-like); every constant below
is ours and is documented in docs/adr/0010-raman-soft-sensor.md.

Bins are numbered 1..2200 as in the publication: bin ``b`` is array index ``b - 1``. Intensities
are detector counts.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["RAMAN_BINS", "RamanAnalyser"]

RAMAN_BINS: Final = 2200

_BIN = np.arange(1, RAMAN_BINS + 1, dtype=np.float64)


def _band(centre_bin: float, width_bins: float) -> NDArray[np.float64]:
    """A unit-height Gaussian band over the bin axis."""
    return np.exp(-0.5 * ((_BIN - centre_bin) / width_bins) ** 2)


# Background of the medium at the start of a batch: detector dark offset, a broad fluorescence band
# of the medium centred mid-axis, and a gentle tilt of the detector's spectral response.
_BACKGROUND = 1.2e5 + 4.0e5 * _band(1400.0, 700.0) + 2.0e4 * _BIN / RAMAN_BINS

# Broth fluorescence grows with cells (autofluorescence, scattering), coloured by-products that track
# penicillin, and viscosity (entrained bubbles scatter): the rising tail of a band beyond the axis.
_FLUORESCENCE = _band(2600.0, 900.0)
_FLUORESCENCE_PER_G_BIOMASS = 3500.0
_FLUORESCENCE_PER_G_PENICILLIN = 7900.0
_FLUORESCENCE_PER_CP = 525.0
# Photobleaching of the medium's fluorophores and probe-window fouling: a slow loss over the batch,
# with another band shape so that drift is not one fixed direction in spectrum space.
_AGEING_PER_H = -500.0 * _band(1100.0, 800.0)

# Analyte bands (centre bin, width in bins as a standard deviation, counts per unit concentration).
_GLUCOSE_PER_G = 900.0 * _band(219.0, 35.0) + 700.0 * _band(639.0, 10.0) + 600.0 * _band(1053.0, 50.0)
_PAA_PER_MG = 22.0 * _band(419.0, 30.0) + 20.0 * _band(839.0, 7.5)
_PENICILLIN_PER_G = 2600.0 * _band(800.0, 15.0) + 2600.0 * _band(1200.0, 15.0)

# Noise: a random walk along the bin axis with steps of +-_NOISE_STEP counts, smoothed by a
# _NOISE_WINDOW-point moving average. _NOISE_WINDOW - 1 extra steps make every bin a full average.
_NOISE_STEP: Final = 400.0
_NOISE_WINDOW: Final = 25
_NOISE_STEPS: Final = RAMAN_BINS + _NOISE_WINDOW - 1
_NOISE_WORDS: Final = (_NOISE_STEPS + 63) // 64
# Steps are drawn as bits c in {0, 1}, step = 2c - 1. The average over bins i..i+24 of the +-1 walk
# is 2 * (average of the 0/1 walk) - (i + 13) (0-based i): the second term never changes, so it is
# folded into the background row once instead of being subtracted on every scan.
_NOISE_RAMP = _NOISE_STEP * (np.arange(RAMAN_BINS, dtype=np.float64) + (_NOISE_WINDOW + 1) / 2)
_NOISE_GAIN: Final = 2.0 * _NOISE_STEP / _NOISE_WINDOW

# One row per term, so a scan's deterministic part is a single (6,) @ (6, 2200) product.
_RESPONSE = np.ascontiguousarray(
    np.vstack(
        [
            _BACKGROUND - _NOISE_RAMP,
            _GLUCOSE_PER_G,
            _PAA_PER_MG,
            _PENICILLIN_PER_G,
            _FLUORESCENCE,
            _AGEING_PER_H,
        ]
    )
)
_RESPONSE.flags.writeable = False


class RamanAnalyser:
    """The Raman spectrometer: one call to :meth:`measure` is one scan.

    Its state is its random generator: the noise of every scan is drawn from it, so two analysers
    built on generators with the same seed produce the same spectra for the same broth.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._bits = rng.bit_generator

    def measure(
        self,
        glucose_g_per_l: float,
        paa_mg_per_l: float,
        penicillin_g_per_l: float,
        biomass_g_per_l: float,
        viscosity_cp: float,
        time_h: float,
    ) -> NDArray[np.float64]:
        """Scan the broth: a new array of ``RAMAN_BINS`` intensities (counts).

        Concentrations and viscosity below zero are read as zero (the instrument cannot see a
        negative amount; the fermenter model's solver may undershoot slightly).

        Raises:
            ValueError: a value is not finite, or ``time_h`` is negative (a bug in the caller).
        """
        for name, value in (
            ("glucose_g_per_l", glucose_g_per_l),
            ("paa_mg_per_l", paa_mg_per_l),
            ("penicillin_g_per_l", penicillin_g_per_l),
            ("biomass_g_per_l", biomass_g_per_l),
            ("viscosity_cp", viscosity_cp),
            ("time_h", time_h),
        ):
            if not math.isfinite(value):
                raise ValueError(f"Raman scan: {name} is {value!r}, not a finite number")
        if time_h < 0.0:
            raise ValueError(f"Raman scan: time_h is {time_h!r}, before the start of the batch")
        penicillin = max(penicillin_g_per_l, 0.0)
        fluorescence = (
            _FLUORESCENCE_PER_G_BIOMASS * max(biomass_g_per_l, 0.0)
            + _FLUORESCENCE_PER_G_PENICILLIN * penicillin
            + _FLUORESCENCE_PER_CP * max(viscosity_cp, 0.0)
        )
        terms = np.array(
            (1.0, max(glucose_g_per_l, 0.0), max(paa_mg_per_l, 0.0), penicillin, fluorescence, time_h)
        )
        spectrum: NDArray[np.float64] = terms @ _RESPONSE

        # Little-endian bytes, so a seed gives the same spectra on every platform.
        raw = self._bits.random_raw(_NOISE_WORDS).astype("<u8", copy=False).view(np.uint8)
        walk = np.unpackbits(raw, count=_NOISE_STEPS).astype(np.int64)
        np.cumsum(walk, out=walk)  # the 0/1 walk
        np.cumsum(walk, out=walk)  # its running sum: window sums are differences of it
        window_sums = np.empty(RAMAN_BINS, dtype=np.int64)
        window_sums[0] = walk[_NOISE_WINDOW - 1]
        np.subtract(walk[_NOISE_WINDOW:], walk[:-_NOISE_WINDOW], out=window_sums[1:])
        spectrum += window_sums * _NOISE_GAIN
        return spectrum

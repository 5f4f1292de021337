"""Spot checks of the model against the reference values (fermenter-parameters.md section 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aseptic.twin import _kinetics as k

pytestmark = pytest.mark.requirement("ASE-TWIN")


def _derived(temp_k: float = 298.0, ph: float = 6.5) -> np.ndarray:
    x = np.zeros((1, k.N_STATES))
    x[0, k.V], x[0, k.T], x[0, k.H], x[0, k.VISC] = 80_000.0, temp_k, 10.0**-ph, 60.0
    x[0, k.A0], x[0, k.A1] = 10.0, 20.0
    x[0, k.NH3], x[0, k.PAA], x[0, k.DO2] = 1700.0, 1200.0, 15.0
    u = np.zeros((1, k.N_INPUTS))
    u[0, k.PHEAD], u[0, k.FG], u[0, k.RPM], u[0, k.FOIL] = 1.1, 75.0, 100.0, 23.0
    q = np.array([[0.041, 0.41, 600.0, 1000.0, 0.033, 530_000.0, 285.0, 0.21, 85.0, 150_000.0]])
    out = np.zeros((1, k.N_DERIVED))
    k.derive(x, u, q, out)
    return out[0]


@pytest.mark.parametrize(
    ("index", "expected", "rel"),
    [
        (k.D_I_T, 1.002, 0.01),
        (k.D_I_PH, 0.90, 0.01),
        (k.D_MU_H, 0.0026, 0.02),
        (k.D_DO_SAT, 19.9, 0.01),
        (k.D_P_AG_KW, 480.0, 0.02),
        (k.D_KLA, 67.0, 0.03),
        (k.D_F_EVP, 36.0, 0.02),
    ],
)
def test_spot_values_match_the_reference(index: int, expected: float, rel: float) -> None:
    assert math.isclose(_derived()[index], expected, rel_tol=rel)


def test_temperature_inhibition_falls_above_optimum() -> None:
    assert math.isclose(_derived(temp_k=303.0)[k.D_I_T], 0.886, rel_tol=0.01)

"""Each built-in fault has its published effect, in its sample windows."""

from __future__ import annotations

import numpy as np
import pytest

from aseptic.twin import BatchResult
from aseptic.twin import _kinetics as k

pytestmark = pytest.mark.requirement("ASE-TWIN")


def _window(first: int, last: int) -> slice:
    return slice(first - 1, last)  # sample k is row k - 1


def test_fault1_aeration_drop_lowers_dissolved_o2_and_offgas_o2(
    clean_batch: BatchResult, faulted: dict[int, BatchResult]
) -> None:
    bad = faulted[1]
    for first, last in ((100, 120), (500, 550)):
        w = _window(first, last)
        assert np.allclose(bad.tags["aeration_m3_per_min"][w], 20.0)
        assert bad.states[w, k.DO2].mean() < clean_batch.states[w, k.DO2].mean() - 0.1
        # less air carries the same uptake: the off-gas is more depleted of O2
        assert bad.states[w, k.O2].mean() < clean_batch.states[w, k.O2].mean() - 0.005


def test_fault2_back_pressure_raises_dissolved_o2(
    clean_batch: BatchResult, faulted: dict[int, BatchResult]
) -> None:
    bad = faulted[2]
    for first, last in ((500, 520), (1000, 1200)):
        w = _window(first, last)
        assert np.allclose(bad.inputs[w, k.PHEAD], 2.0)
        assert bad.states[w, k.DO2].mean() > clean_batch.states[w, k.DO2].mean() + 2.0


def test_fault3_sugar_feed_change_follows_its_windows_and_starves_growth(
    clean_batch: BatchResult, faulted: dict[int, BatchResult]
) -> None:
    bad = faulted[3]
    assert np.allclose(bad.inputs[_window(100, 150), k.FS], 2.0)
    assert np.allclose(bad.inputs[_window(380, 460), k.FS], 20.0)
    assert np.allclose(bad.inputs[_window(1000, 1070), k.FS], 20.0)
    biomass = k.A0, k.A1, k.A3, k.A4
    assert bad.states[149, biomass].sum() < clean_batch.states[149, biomass].sum() - 0.5
    assert bad.states[459, k.P] < clean_batch.states[459, k.P]


def test_fault4_base_drop_lowers_ph(clean_batch: BatchResult, faulted: dict[int, BatchResult]) -> None:
    bad = faulted[4]
    ph_bad = -np.log10(bad.states[:, k.H])
    ph_clean = -np.log10(clean_batch.states[:, k.H])
    assert np.allclose(bad.inputs[_window(400, 420), k.FB], 5.0)
    assert np.allclose(bad.inputs[_window(700, 800), k.FB], 10.0)
    assert ph_bad[_window(700, 800)].min() < ph_clean[_window(700, 800)].min() - 0.05


def test_fault5_coolant_drop_raises_temperature(
    clean_batch: BatchResult, faulted: dict[int, BatchResult]
) -> None:
    bad = faulted[5]
    w = _window(350, 450)
    assert np.allclose(bad.inputs[w, k.FC], 2.0)
    assert bad.states[w, k.T].max() > clean_batch.states[w, k.T].max() + 0.2


def test_fault6_applies_all_process_faults(faulted: dict[int, BatchResult]) -> None:
    bad = faulted[6]
    assert np.allclose(bad.inputs[_window(100, 120), k.FG], 20.0)
    assert np.allclose(bad.inputs[_window(500, 520), k.PHEAD], 2.0)
    assert np.allclose(bad.inputs[_window(380, 460), k.FS], 20.0)
    assert np.allclose(bad.inputs[_window(400, 420), k.FB], 5.0)
    assert np.allclose(bad.inputs[_window(350, 450), k.FC], 2.0)


def test_fault7_temperature_sensor_drift_pushes_true_temperature_down(
    clean_batch: BatchResult, faulted: dict[int, BatchResult]
) -> None:
    bad = faulted[7]
    bias = bad.tags["temperature_k"] - bad.states[:, k.T]
    assert abs(bias[_window(150, 200)].mean()) < 0.01
    assert abs(bias[_window(820, 1000)].mean() - 0.4) < 0.01
    w = _window(820, 1000)
    assert bad.states[w, k.T].mean() < clean_batch.states[w, k.T].mean() - 0.25


def test_fault8_ph_sensor_drift_pushes_true_ph_down(
    clean_batch: BatchResult, faulted: dict[int, BatchResult]
) -> None:
    bad = faulted[8]
    true_ph = -np.log10(bad.states[:, k.H])
    bias = bad.tags["ph"] - true_ph
    assert abs(bias[_window(820, 1000)].mean() - 0.1) < 0.005
    w = _window(820, 1000)
    assert true_ph[w].mean() < (-np.log10(clean_batch.states[w, k.H])).mean() - 0.06

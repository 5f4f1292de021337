"""Instruments: noise, delayed offline assays, the soft sensor in the loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aseptic.twin import BatchResult, simulate_batches
from aseptic.twin import _kinetics as k
from aseptic.twin._sensors import assay_sample_indices

pytestmark = pytest.mark.requirement("ASE-TWIN")


def test_assays_are_reported_four_samples_late_and_absent_between(clean_batch: BatchResult) -> None:
    reported = np.flatnonzero(~np.isnan(clean_batch.tags["assay_penicillin_g_per_l"]))
    taken = assay_sample_indices(len(clean_batch.time_h), 0.2)
    assert list(reported + 1) == [t + 4 for t in taken]
    assert math.isclose(clean_batch.time_h[reported[0]], 1.8)  # the t = 1 h sample, 0.8 h later
    assert math.isclose(clean_batch.time_h[reported[1]], 12.8)
    assert reported[-1] == len(clean_batch.time_h) - 1  # the end-of-batch assay closes the record
    # Each result is the broth of 4 samples earlier plus the lab's error (catalogue noise_sd).
    source = reported - 4
    p_error = clean_batch.tags["assay_penicillin_g_per_l"][reported] - clean_batch.states[source, k.P]
    paa_error = clean_batch.tags["assay_paa_mg_per_l"][reported] - clean_batch.states[source, k.PAA]
    assert np.abs(p_error[source > 100]).max() < 0.5  # 5 sd of 0.1 g/L; P is ~0 early (clipped at 0)
    assert np.abs(paa_error).max() < 100.0  # 5 sd of 20 mg/L
    assert np.abs(paa_error).max() > 0.0  # lab results are not exact copies of the state


def test_online_sensors_carry_their_catalogue_noise(clean_batch: BatchResult) -> None:
    error = clean_batch.tags["temperature_k"] - clean_batch.states[:, k.T]
    assert 0.008 < error.std() < 0.012
    error = clean_batch.tags["volume_l"] - clean_batch.states[:, k.V]
    assert 40.0 < error.std() < 60.0


def test_paa_loop_closed_on_the_soft_sensor_holds_the_setpoint() -> None:
    batch = simulate_batches(1, 4, duration_h=80.0)[0]
    estimate = batch.tags["paa_softsensor_mg_per_l"]
    late = slice(300, None)  # from 60 h
    assert np.isfinite(estimate).all()
    assert abs(np.mean(batch.states[late, k.PAA]) - 1200.0) < 60.0
    assert np.std(estimate[late] - batch.states[late, k.PAA]) < 100.0


def test_fast_mode_publishes_no_soft_sensor_value(clean_batch: BatchResult) -> None:
    assert np.isnan(clean_batch.tags["paa_softsensor_mg_per_l"]).all()

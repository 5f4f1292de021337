"""A guard calibrated on clean twin batches (training seeds), shared by the guard tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from guard_support import DURATION_H, START, TRAINING_SEEDS

from aseptic.guard import GuardLimits, ModelGuard, SpectralMonitor, calibrate_limits, run_guarded_batch
from aseptic.twin import PaaSoftSensor, Plant, default_soft_sensor, simulate_calibration


@pytest.fixture(scope="session")
def shadow() -> PaaSoftSensor:
    # Independent of the primary: its own calibration spectra (seed), same design.
    return PaaSoftSensor().fit(*simulate_calibration(31_000, 400))


@pytest.fixture(scope="session")
def monitor() -> SpectralMonitor:
    return SpectralMonitor.fit(default_soft_sensor(), simulate_calibration(31_001, 600)[0])


@pytest.fixture(scope="session")
def limits(shadow: PaaSoftSensor, monitor: SpectralMonitor) -> GuardLimits:
    loose = GuardLimits(
        shadow_mg_per_l=1e9,
        assay_mg_per_l=1e9,
        consumption_low_mg_per_l_per_h=-1e9,
        consumption_high_mg_per_l_per_h=1e9,
    )
    runs = []
    for seed in TRAINING_SEEDS:
        guard = ModelGuard(
            deployed_digest=default_soft_sensor().digest, shadow=shadow, monitor=monitor, limits=loose
        )
        run_guarded_batch(Plant(seed, duration_h=DURATION_H), guard, start=START, fallback=False)
        runs.append(guard.diagnostics)
    return calibrate_limits(runs, margin=2.0)


@pytest.fixture
def make_guard(
    shadow: PaaSoftSensor, monitor: SpectralMonitor, limits: GuardLimits
) -> Callable[[], ModelGuard]:
    def make() -> ModelGuard:
        return ModelGuard(
            deployed_digest=default_soft_sensor().digest, shadow=shadow, monitor=monitor, limits=limits
        )

    return make

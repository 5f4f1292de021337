"""Running a twin batch with the model guard in the loop (what the benchmark and the drills use)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from aseptic.guard._finding import GuardFinding
from aseptic.guard._guard import GuardSample, ModelGuard
from aseptic.twin import PaaSoftSensor, Plant

__all__ = ["GuardedRun", "run_guarded_batch"]


@dataclass(frozen=True)
class GuardedRun:
    """The outcome of one guarded batch."""

    batch_hours: float
    findings: tuple[GuardFinding, ...]
    fallback_from_h: float | None
    max_true_paa_mg_per_l: float
    min_true_paa_mg_per_l: float

    @property
    def first_detection_h(self) -> float | None:
        return self.findings[0].batch_time_h if self.findings else None


def run_guarded_batch(
    plant: Plant,
    guard: ModelGuard,
    *,
    start: datetime,
    fallback: bool = True,
    replace_at_h: float | None = None,
    replacement: PaaSoftSensor | None = None,
    report_digest: bool = False,
    paa_window_from_h: float = 20.0,
) -> GuardedRun:
    """Step ``plant`` to its end, feeding the guard; switch to the fallback on the first Finding.

    ``replace_at_h``/``replacement``: swap the soft sensor at that time (the replaced-model drill).
    ``report_digest``: pass the running model's digest to the guard (an attacker who controls the
    controller can lie about it, so the benchmark leaves it off and relies on behaviour).
    """
    fallback_from: float | None = None
    high, low = -math.inf, math.inf
    while not plant.finished:
        if replace_at_h is not None and replacement is not None and plant.time_h >= replace_at_h:
            plant.replace_soft_sensor(replacement)
            replace_at_h = None
        row = plant.step()
        sample = GuardSample(
            time=start + timedelta(hours=plant.time_h),
            batch_time_h=plant.time_h,
            spectrum=plant.last_spectrum,
            estimate_mg_per_l=row["paa_softsensor_mg_per_l"],
            paa_feed_l_per_h=row["paa_feed_l_per_h"],
            volume_l=row["volume_l"],
            assay_paa_mg_per_l=row["assay_paa_mg_per_l"],
            model_digest=plant.soft_sensor_digest if report_digest else None,
        )
        if guard.update(sample) and fallback and fallback_from is None:
            plant.set_paa_fallback(True)
            fallback_from = plant.time_h
        if plant.time_h >= paa_window_from_h:
            paa = plant.true_state()["paa_mg_per_l"]
            high, low = max(high, paa), min(low, paa)
    return GuardedRun(plant.time_h, tuple(guard.findings), fallback_from, high, low)

"""Model guard: watches the ML soft sensor in the PAA loop and calls for the validated fallback.

``SpectralMonitor`` (PCA T2/SPE on the Raman features the model reads), ``ModelGuard`` (spectrum,
shadow model, offline assay and PAA mass-balance checks, one ``GuardFinding`` per alarm episode
naming the MITRE ATLAS technique), ``run_guarded_batch`` (a twin batch with the guard in the loop),
and the drills it is measured against. See docs/guard.md.
"""

from aseptic.guard._drills import adversarial_drift, poisoned_soft_sensor, replacement_soft_sensor
from aseptic.guard._finding import ATLAS_TECHNIQUES, GuardFinding
from aseptic.guard._guard import GuardLimits, GuardSample, ModelGuard, calibrate_limits
from aseptic.guard._run import GuardedRun, run_guarded_batch
from aseptic.guard._spectral import SpectralMonitor, SpectralScore

__all__ = [
    "ATLAS_TECHNIQUES",
    "GuardFinding",
    "GuardLimits",
    "GuardSample",
    "GuardedRun",
    "ModelGuard",
    "SpectralMonitor",
    "SpectralScore",
    "adversarial_drift",
    "calibrate_limits",
    "poisoned_soft_sensor",
    "replacement_soft_sensor",
    "run_guarded_batch",
]

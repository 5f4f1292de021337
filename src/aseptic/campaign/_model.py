"""Soft-sensor primitives on the twin with the model guard and verify-before-load watching.

Scenarios with ``model_replace``, ``model_poison`` or ``model_input_drift`` run their batches with
the PAA loop on the Raman soft sensor (``paa_control="softsensor"``), each batch with its own
``aseptic.guard.ModelGuard`` (limits calibrated on clean guarded batches, seeds ``GUARD_SEED``+, a
shadow model and spectral monitor of their own calibration seeds, as in benchmarks/guard_model.py).
The guard's first Finding switches the batch's PAA loop to the assay-based fallback (the response).

- ``model_replace``: the attacker's model (``variant`` biased: reads 0.7 x the truth; untrained:
  fitted on shuffled labels) is first offered to the deploy path, which loads models only through
  ``aseptic.twin.load_soft_sensor`` (verify-before-load against the site's signed manifest): the
  refusal is a ``provenance.load_refused`` Finding. The attacker then swaps it into the running
  controller directly, where only the guard can see it.
- ``model_poison``: a model trained on calibration data with labels in 600-1800 mg/L raised by
  ``fraction`` x 1600 mg/L (0.25 -> 400 mg/L, the guard drill's size) is deployed; poisoning happens
  before signing, so verify-before-load accepts it (checked) and only the guard can see it.
- ``model_input_drift``: every Raman spectrum moved along the model's weights so that its
  prediction falls by ``magnitude`` x the PAA setpoint, ramped in over the step's window and
  removed after it (AML.T0043 / AML.T0015).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from aseptic.campaign._scenario import Step
from aseptic.config import TwinSettings
from aseptic.crypto import SigningKey
from aseptic.errors import AsepticError
from aseptic.guard import (
    GuardLimits,
    GuardSample,
    ModelGuard,
    SpectralMonitor,
    adversarial_drift,
    calibrate_limits,
    poisoned_soft_sensor,
    replacement_soft_sensor,
)
from aseptic.provenance import (
    ArtifactKind,
    LoadRefusal,
    ManifestSpec,
    manifest_path_for,
    sign_artifact,
    write_manifest,
)
from aseptic.twin import (
    PaaSoftSensor,
    PlantFleet,
    SpectrumTamper,
    default_soft_sensor,
    load_soft_sensor,
    simulate_calibration,
)

__all__ = ["GUARD_SEED", "GuardKit", "ModelWatch", "fit_guard_kit", "spectrum_tamper"]

GUARD_SEED = 1000
START = datetime(2026, 1, 1, tzinfo=UTC)
_POISON_SPAN_MG_PER_L = 1600.0


@dataclass(frozen=True)
class GuardKit:
    """What every batch's guard shares: the shadow model, the spectral monitor, the limits."""

    shadow: PaaSoftSensor
    monitor: SpectralMonitor
    limits: GuardLimits


def fit_guard_kit(training_batches: int, *, duration_h: float | None = None) -> GuardKit:
    """Fit the shadow and monitor on their own calibration seeds; calibrate limits on clean batches."""
    primary = default_soft_sensor()
    shadow = PaaSoftSensor().fit(*simulate_calibration(31_000, 400))
    monitor = SpectralMonitor.fit(primary, simulate_calibration(31_001, 600)[0])
    loose = GuardLimits(
        shadow_mg_per_l=1e9,
        assay_mg_per_l=1e9,
        consumption_low_mg_per_l_per_h=-1e9,
        consumption_high_mg_per_l_per_h=1e9,
    )
    seeds = list(range(GUARD_SEED, GUARD_SEED + training_batches))
    fleet = PlantFleet(seeds, durations_h=[duration_h] * len(seeds), paa_control="softsensor")
    guards = [
        ModelGuard(
            deployed_digest=primary.digest, shadow=shadow, monitor=monitor, limits=loose, batch_id=f"t{s}"
        )
        for s in seeds
    ]
    while not fleet.finished:
        active = fleet.active
        row = fleet.step()
        for b, guard in enumerate(guards):
            if active[b]:
                guard.update(_sample(fleet, b, row, fleet.time_h))
    return GuardKit(shadow, monitor, calibrate_limits([g.diagnostics for g in guards]))


def _sample(fleet: PlantFleet, b: int, row: dict[str, np.ndarray], time_h: float) -> GuardSample:
    return GuardSample(
        time=START + timedelta(hours=time_h),
        batch_time_h=time_h,
        spectrum=fleet.last_spectrum(b),
        estimate_mg_per_l=float(row["paa_softsensor_mg_per_l"][b]),
        paa_feed_l_per_h=float(row["paa_feed_l_per_h"][b]),
        volume_l=float(row["volume_l"][b]),
        assay_paa_mg_per_l=float(row["assay_paa_mg_per_l"][b]),
    )


def spectrum_tamper(steps: Sequence[Step]) -> SpectrumTamper | None:
    """The adversarial drift of a scenario's ``model_input_drift`` steps (None without one)."""
    drifts = [s for s in steps if s.primitive == "model_input_drift"]
    if not drifts:
        return None
    setpoint = TwinSettings().paa_setpoint_mg_per_l
    primary = default_soft_sensor()
    windows = []
    for step in drifts:
        ramp = step.duration_h if step.duration_h else 20.0
        shift = -float(step.params["magnitude"]) * setpoint
        end = step.at_h + ramp if step.duration_h else float("inf")
        windows.append(
            (step.at_h, end, adversarial_drift(primary, start_h=step.at_h, ramp_h=ramp, shift_mg_per_l=shift))
        )

    def tamper(time_h: float, spectrum: np.ndarray) -> np.ndarray:
        for start, end, drift in windows:
            if start <= time_h < end:
                spectrum = drift(time_h, spectrum)
        return spectrum

    return tamper


def _attacker_model(step: Step) -> PaaSoftSensor:
    if step.primitive == "model_poison":
        shift = float(step.params["fraction"]) * _POISON_SPAN_MG_PER_L
        return poisoned_soft_sensor(shift_mg_per_l=shift)
    if step.params.get("variant", "biased") == "untrained":
        spectra, paa = simulate_calibration(31_002, 400)
        return PaaSoftSensor().fit(spectra, np.random.default_rng(7).permutation(paa))
    return replacement_soft_sensor()


class _Refusals:
    def __init__(self) -> None:
        self.refusals: list[LoadRefusal] = []

    def record_refusal(self, refusal: LoadRefusal) -> None:
        self.refusals.append(refusal)


class ModelWatch:
    """Batch ``batch``'s guard in the loop; the scenario's model steps executed at their time."""

    def __init__(self, fleet: PlantFleet, batch: int, steps: Sequence[Step], kit: GuardKit) -> None:
        self._fleet, self._batch = fleet, batch
        self._steps = [s for s in steps if s.primitive in ("model_replace", "model_poison")]
        self._done: set[int] = set()
        self._guard = ModelGuard(
            deployed_digest=default_soft_sensor().digest,
            shadow=kit.shadow,
            monitor=kit.monitor,
            limits=kit.limits,
            batch_id=f"campaign-{batch}",
        )
        self._fallback = False
        self.findings: list[tuple[float, str]] = []
        self.impact: dict[str, Any] = {}

    def before_step(self, next_h: float) -> None:
        for i, step in enumerate(self._steps):
            if i in self._done or next_h < step.at_h - 1e-9:
                continue
            self._done.add(i)
            model = _attacker_model(step)
            refused = _offer_to_loader(model, step.at_h, signed=step.primitive == "model_poison")
            if step.primitive == "model_replace" and refused:
                self.findings.append((step.at_h, "provenance.load_refused"))
            self.impact["loader_refused"] = refused
            self._fleet.replace_soft_sensor(self._batch, model)

    def observe(self, time_h: float, row: dict[str, np.ndarray]) -> None:
        new = self._guard.update(_sample(self._fleet, self._batch, row, time_h))
        for finding in new:
            self.findings.append((time_h, f"model_guard.{finding.check}"))
        if new and not self._fallback:
            self._fallback = True
            self._fleet.set_paa_fallback(self._batch, True)
            self.impact["fallback_from_h"] = time_h

    def close(self) -> None:
        return None


def _offer_to_loader(model: PaaSoftSensor, at_h: float, *, signed: bool) -> bool:
    """Put ``model`` where the site's signed model was and load it through verify-before-load.

    A poisoned model is signed by the site (poisoning happens before signing): it is signed here
    too, and loads. A replacement is written over the signed file: refused. True if refused.
    """
    root = Path(tempfile.mkdtemp(prefix="aseptic-campaign-model-"))
    try:
        key = SigningKey.generate()
        path = root / "paa-soft-sensor.json"
        now = START + timedelta(hours=at_h)
        path.write_bytes(default_soft_sensor().to_bytes())
        spec = ManifestSpec(
            kind=ArtifactKind.MODEL,
            name="paa-soft-sensor",
            version="1.0.0",
            built_at=START - timedelta(days=30),
            builder_id="urn:aseptic:site:campaign",
            code_version="campaign",
        )
        write_manifest(sign_artifact(path, spec, key), manifest_path_for(path))
        path.write_bytes(model.to_bytes())
        if signed:
            write_manifest(sign_artifact(path, spec, key), manifest_path_for(path))
        sink = _Refusals()
        try:
            load_soft_sensor(path, [key.public], now=now, sink=sink)
        except AsepticError:
            return True
        return bool(sink.refusals)
    finally:
        shutil.rmtree(root, ignore_errors=True)

"""Explaining a Finding: expected values of the contributing tags, and attack vs process fault.

``expected_values``: a detector that predicts tags (the twin residual) says what it expected; for a
batch-model detector it is the mean of the clean training batches at that batch time; else NaN.

``classify_cause``: a published process fault of the reference fermenter (``aseptic.twin.Fault`` 1-5:
aeration drop, back pressure, sugar feed change, base flow drop, coolant flow drop) is an actuator
that departs from its recipe or controller while the process answers as physics says it must (base
drops -> pH falls below its setpoint; cooling drops -> temperature rises above its setpoint). Such a
Finding is reported as a *process fault* naming the fault; the technique stays as the hint of what
an attacker doing the same would be. Anything else, and
every integrity statistic (a held value, a replayed window, a broken balance, a step the plant
cannot make), is reported as a possible attack. An actuator driven by an attacker the same way
(T0831) looks the same: the label is a hint, never a verdict. The sensor drifts (faults 7, 8) are
indistinguishable from an in-loop ramp and are reported as attacks (T0856).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from aseptic.detect._fitted import ModelDetector
from aseptic.twin import Fault

__all__ = ["Expects", "FaultSignature", "classify_cause", "expected_values"]

# Statistics that are evidence against the reading itself, never a process upset.
INTEGRITY_STATISTICS = ("stale.", "replay.", "physics.", "twin.step", "balance.", "redundancy.")
# Control-loop checks (``ControlLoopDetector``): a reading the loop's physics cannot produce, unless
# the detector names a stuck actuator or a departed utility first (a process-fault hypothesis).
CONTROL_STATISTICS = ("control.",)


@runtime_checkable
class Expects(Protocol):
    """A detector that can say what it expected for tags of the sample it scored last."""

    def expected_values(self, tags: Sequence[str]) -> tuple[float, ...]: ...


@dataclass(frozen=True)
class FaultSignature:
    """An actuator a published fault forces, the direction, and the loop's visible consequence."""

    fault: Fault
    direction: int  # -1 the actuator drops, +1 it rises, 0 either
    measurement: str | None = None  # the controlled variable that must depart ...
    setpoint: str | None = None
    band: float = 0.0  # ... by more than this, in the direction ``sign``
    sign: int = 0


FAULT_SIGNATURES: dict[str, FaultSignature] = {
    "aeration_m3_per_min": FaultSignature(Fault.AERATION_DROP, -1),
    "head_pressure_bar": FaultSignature(Fault.BACK_PRESSURE, +1),
    "sugar_feed_l_per_h": FaultSignature(Fault.SUGAR_FEED_CHANGE, 0),
    "base_flow_l_per_h": FaultSignature(Fault.BASE_FLOW_DROP, -1, "ph", "ph_sp", 0.02, -1),
    "cooling_water_l_per_h": FaultSignature(
        Fault.COOLANT_FLOW_DROP, -1, "temperature_k", "temperature_sp_k", 0.05, +1
    ),
}


UTILITIES = ("aeration_m3_per_min", "head_pressure_bar", "sugar_feed_l_per_h")


def expected_values(detector: object, sample: Mapping[str, float], tags: Sequence[str]) -> tuple[float, ...]:
    """What ``detector`` expected for ``tags`` at ``sample`` (NaN where it has no expectation)."""
    if isinstance(detector, Expects):
        return detector.expected_values(tags)
    if isinstance(detector, ModelDetector):
        model = detector._model  # read-only: a fitted model or None
        t = sample.get("batch_time_h", math.nan)
        if model is not None and model.aligned and isinstance(t, float | int) and math.isfinite(t):
            out = []
            for tag in tags:
                for alignment in (model.alignment, model.recipe):
                    if tag in alignment.tags:
                        k = int(alignment.slice_of(float(t)))
                        out.append(float(alignment.mean[k, alignment.tags.index(tag)]))
                        break
                else:
                    out.append(math.nan)
            return tuple(out)
    return tuple(math.nan for _ in tags)


# A recipe utility further than this fraction of its expected value from it has moved (the recipe
# check's tolerance is 0.5 % of span; a published fault moves aeration by ~70 %, pressure x3).
UTILITY_DEPARTURE = 0.1


def _departed_utility(sample: Mapping[str, float], expect: Callable[[str], float] | None) -> Fault | None:
    """The fault whose recipe utility (aeration, head pressure, sugar feed) has left the value the
    detector expects at this batch time, in the fault's direction; None if none has (or no
    expectation is known)."""
    if expect is None:
        return None
    for utility in UTILITIES:
        signature = FAULT_SIGNATURES[utility]
        wanted = expect(utility)
        value = sample.get(utility, math.nan)
        if not (math.isfinite(wanted) and math.isfinite(value)):
            continue
        delta = value - wanted
        if abs(delta) > UTILITY_DEPARTURE * max(abs(wanted), 1e-9) and (
            signature.direction == 0 or np.sign(delta) == signature.direction
        ):
            return signature.fault
    return None


def classify_cause(
    statistic: str,
    tags: Sequence[str],
    expected: Sequence[float],
    observed: Sequence[float],
    sample: Mapping[str, float],
    expect: Callable[[str], float] | None = None,
) -> tuple[str, str | None]:
    """``("process fault", fault name)`` for a published fault's pattern, else ``("attack", None)``.

    The top contributor must be a fault's actuator, or the controlled variable of a fault's loop;
    the actuator must have moved the fault's way (observed vs ``expect(tag)``, the detector's
    expectation, when known), and a loop's variable must have left its setpoint the physical way.
    """
    if statistic.startswith(INTEGRITY_STATISTICS) or not tags:
        return "attack", None
    top = tags[0]
    if statistic.startswith(CONTROL_STATISTICS):
        # The control-loop checks name an actuator first only when it held a value against its
        # controller's law (stuck, forced) or a utility left its clean envelope just before: the
        # physics of the loop is consistent with the readings, the process itself moved.
        signature = FAULT_SIGNATURES.get(top)
        return ("process fault", signature.fault.name) if signature is not None else ("attack", None)
    moved = _departed_utility(sample, expect)
    if moved is not None:
        return "process fault", moved.name
    for actuator, signature in FAULT_SIGNATURES.items():
        if top not in (actuator, signature.measurement):
            continue
        if top == actuator:
            delta = observed[0] - expected[0] if observed and expected else math.nan
        else:
            wanted = expect(actuator) if expect is not None else math.nan
            delta = sample.get(actuator, math.nan) - wanted
            if not np.isfinite(delta):
                continue  # the measurement moved; without the actuator's expectation, no verdict
        if signature.direction and np.isfinite(delta) and np.sign(delta) != signature.direction:
            continue
        if signature.measurement is not None and signature.setpoint is not None:
            m = sample.get(signature.measurement, math.nan)
            sp = sample.get(signature.setpoint, math.nan)
            if not (math.isfinite(m) and math.isfinite(sp) and signature.sign * (m - sp) > signature.band):
                continue  # the loop holds its measurement: the actuator moved for another reason
        return "process fault", signature.fault.name
    return "attack", None

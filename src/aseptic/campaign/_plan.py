"""What the runner plans before any worker starts: groups of batches and the watches they need.

Kept free of heavy imports (the platform components load only in the workers).
"""

from __future__ import annotations

from dataclasses import dataclass

from aseptic.campaign._scenario import Scenario
from aseptic.twin import PaaControl

__all__ = ["MODEL_PRIMITIVES", "SAMPLE_H", "SENSOR_PRIMITIVES", "Group", "watch_keys"]

SAMPLE_H = 0.2
SENSOR_PRIMITIVES = frozenset(
    {"sensor_bias", "sensor_ramp", "sensor_surge", "sensor_geometric", "sensor_replay", "sensor_stale"}
)
MODEL_PRIMITIVES = frozenset({"model_replace", "model_poison", "model_input_drift"})


@dataclass(frozen=True)
class Group:
    mode: PaaControl
    duration_h: float
    seed: int
    scenarios: tuple[Scenario, ...]
    watches: tuple[str, ...]  # what the clean companion runs: "firmware", "custody", "access:<identity>"


def watch_keys(scenario: Scenario) -> list[str]:
    """The platform watches a scenario's batches run: firmware, custody, gateway, access:<identity>."""
    keys = []
    for step in scenario.steps:
        if step.primitive == "firmware_swap":
            keys.append("firmware")
        elif step.primitive in ("ransomware_encrypt", "ledger_tamper"):
            keys.append("custody")
        elif step.primitive == "setpoint_tamper":
            keys.append("gateway")
        elif step.primitive in ("historian_bulk_read", "data_export"):
            keys.append(f"access:{step.params.get('identity', 'operator')}")
    return sorted(set(keys))

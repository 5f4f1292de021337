"""The twin bench's attack scenarios: which primitive, where (reporting path or in the loop), how big.

Sizes were fixed before any bench run as multiples of each tag's normal spread around its setpoint
(temperature noise 0.01 K, pH noise 0.002): the "x3" sizes of benchmarks/detect_twin.py. Each
attacked batch alternates between the two controlled tags (temperature for even, pH for odd
batch indices), so every kind is measured on both loops.
"""

from __future__ import annotations

from dataclasses import dataclass

from aseptic.campaign import Attack, Bias, Freeze, Geometric, Ramp, Replay, SetpointChange, Surge

__all__ = ["ATTACK_H", "PROCESS_FAULTS", "SCENARIOS", "Scenario", "build_attacks"]

START_H, ATTACK_H = 100.0, 40.0
TAGS = ("temperature_k", "ph")
SIZES = {"temperature_k": (0.6, 0.03), "ph": (0.15, 0.006)}  # bias, ramp slope per h
SETPOINTS = {"temperature_k": ("temperature_sp_k", 0.6), "ph": ("ph_sp", 0.15)}
PROCESS_FAULTS = (1, 2, 3, 4, 5)  # actuator upsets; 7 and 8 are sensor drifts (see docs)


@dataclass(frozen=True)
class Scenario:
    kind: str  # bias, ramp, surge, geometric, replay, stale, setpoint
    placement: str  # "reporting" or "in-loop"
    hidden: bool = False  # setpoint: the view keeps showing the recipe setpoint

    @property
    def label(self) -> str:
        suffix = " (hidden)" if self.hidden else ""
        return f"{self.placement}: {self.kind}{suffix}"


SCENARIOS = tuple(
    [Scenario(k, "reporting") for k in ("bias", "ramp", "surge", "geometric", "replay", "stale", "setpoint")]
    + [Scenario(k, "in-loop") for k in ("bias", "ramp", "surge", "geometric", "replay", "stale")]
    + [Scenario("setpoint", "in-loop"), Scenario("setpoint", "in-loop", hidden=True)]
)


def attacked_tag(index: int) -> str:
    """The tag attacked in batch ``index`` (alternating temperature, pH)."""
    return TAGS[index % 2]


def build_attacks(scenario: Scenario, tag: str) -> list[Attack]:
    """Fresh primitives (replay and freeze are stateful) for one batch."""
    bias, slope = SIZES[tag]
    kind = scenario.kind
    if kind == "bias":
        return [Bias(tag, START_H, ATTACK_H, bias)]
    if kind == "ramp":
        return [Ramp(tag, START_H, ATTACK_H, slope)]
    if kind == "surge":
        return [Surge(tag, START_H, ATTACK_H, peak=3.0 * bias, settle=bias / 3.0, surge_h=1.0)]
    if kind == "geometric":
        return [Geometric(tag, START_H, ATTACK_H, offset_end=2.0 * bias, alpha_per_h=0.9)]
    if kind == "replay":
        return [Replay(tag, START_H, ATTACK_H, record_from_h=START_H - ATTACK_H - 10.0)]
    if kind == "stale":
        return [Freeze(tag, START_H, ATTACK_H)]
    if kind == "setpoint":
        setpoint, offset = SETPOINTS[tag]
        return [SetpointChange(setpoint, START_H, ATTACK_H, offset, hidden=scenario.hidden)]
    raise ValueError(f"unknown attack kind {kind!r}")

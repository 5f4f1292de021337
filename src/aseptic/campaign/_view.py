"""Attacks between the plant and the OPC UA server: the plant runs true, its published view lies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aseptic.campaign._primitives import Attack, apply_attacks
from aseptic.twin import PhaseLike, PlantLike

__all__ = ["TamperedView"]


class TamperedView:
    """Wraps a plant so that every published sample passes through ``attacks`` (T0832 / T0856).

    The controllers inside the plant still see the true measurements; only what the OPC UA server
    publishes (and so operators, the historian and Aseptic) is falsified. Setpoint writes and
    firmware reports pass through unchanged.
    """

    def __init__(self, plant: PlantLike, attacks: Sequence[Attack]) -> None:
        self._plant = plant
        self.attacks = tuple(attacks)

    @property
    def sample_time_h(self) -> float:
        return self._plant.sample_time_h

    @property
    def time_h(self) -> float:
        return self._plant.time_h

    @property
    def phase(self) -> PhaseLike:
        return self._plant.phase

    @property
    def finished(self) -> bool:
        return self._plant.finished

    def step(self) -> Mapping[str, float]:
        values = self._plant.step()
        return apply_attacks(self.attacks, self._plant.time_h, values)

    def write_setpoint(self, tag: str, value: float) -> None:
        self._plant.write_setpoint(tag, value)

    def firmware(self) -> Mapping[str, str]:
        return self._plant.firmware()

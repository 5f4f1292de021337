"""Attacks inside the control loop: a ``Plant`` whose instruments and controllers are tampered with.

Sensor primitives (bias, ramp, surge, geometric, replay, freeze) become the plant's measurement
tamper: the PID loops act on the false value, the true process moves, and the false value is
what gets published. A ``SetpointChange`` is written into the controller through
``Plant.write_setpoint`` for the samples inside its window and restored afterwards; with
``hidden`` the published setpoint keeps showing the recipe value (the attacker hides the change).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aseptic.campaign._primitives import Attack, apply_attacks
from aseptic.campaign._shapes import SetpointChange
from aseptic.config import TwinSettings
from aseptic.twin import Fault, PaaControl, Phase, Plant

__all__ = ["InLoopPlant"]


class InLoopPlant:
    """One batch with ``attacks`` at the instruments and controllers (a ``PlantLike``).

    Raises (constructor): InputError for an unknown fault, ConfigError for impossible settings.
    """

    def __init__(
        self,
        seed: int,
        attacks: Sequence[Attack],
        *,
        faults: Sequence[int | str | Fault] = (),
        settings: TwinSettings | None = None,
        duration_h: float | None = None,
        paa_control: PaaControl = "softsensor",
    ) -> None:
        self.attacks = tuple(attacks)
        sensor = [a for a in self.attacks if not isinstance(a, SetpointChange)]
        self._setpoints = [a for a in self.attacks if isinstance(a, SetpointChange)]

        def tamper(time_h: float, measured: Mapping[str, float]) -> Mapping[str, float]:
            return apply_attacks(sensor, time_h, measured)

        self._plant = Plant(
            seed,
            faults=faults,
            settings=settings,
            duration_h=duration_h,
            paa_control=paa_control,
            measurement_tamper=tamper if sensor else None,
        )
        self._recipe = self._plant.setpoints()

    @property
    def plant(self) -> Plant:
        return self._plant

    @property
    def sample_time_h(self) -> float:
        return self._plant.sample_time_h

    @property
    def time_h(self) -> float:
        return self._plant.time_h

    @property
    def duration_h(self) -> float:
        return self._plant.duration_h

    @property
    def phase(self) -> Phase:
        return self._plant.phase

    @property
    def finished(self) -> bool:
        return self._plant.finished

    def step(self) -> dict[str, float]:
        """Write the attacked setpoints for the coming sample, step the plant, hide what is hidden."""
        t_next = self._plant.time_h + self._plant.sample_time_h
        for attack in self._setpoints:
            self._plant.write_setpoint(attack.tag, attack.setpoint_at(t_next, self._recipe[attack.tag]))
        values = self._plant.step()
        for attack in self._setpoints:
            if attack.hidden:
                values[attack.tag] = self._recipe[attack.tag]
        return values

    def write_setpoint(self, tag: str, value: float) -> None:
        self._recipe[tag] = value
        self._plant.write_setpoint(tag, value)

    def firmware(self) -> Mapping[str, str]:
        return self._plant.firmware()

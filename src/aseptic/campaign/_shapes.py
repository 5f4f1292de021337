"""More attack shapes from the process-control security literature: surge, geometric, stale, setpoint.

Each falsifies one tag inside ``[start_h, start_h + duration_h)`` of batch time, like ``Bias`` and
``Ramp`` (see ``_primitives``), and can sit on the reporting path or at the instrument:

- ``Surge``: jump to a large offset for ``surge_h``, then settle to a smaller one that a detector
  tuned on normal variation might tolerate (Cardenas et al. 2011: drive the value to its extreme
  while the detector's statistic stays under its threshold, then hold it near the threshold).
- ``Geometric``: ``y~ = y + offset_end * alpha ** (end_h - t)`` with ``0 < alpha < 1`` per hour: an
  offset that is negligible at first and grows toward the end of the attack.
- ``Freeze``: the last value before the attack is held (denial of view, T0815; "stale" data).
- ``SetpointChange``: a controller setpoint moved by ``offset`` (T0836 Modify Parameter, T0831
  Manipulation of Control). On the reporting path it only falsifies the displayed setpoint; in the
  loop (``setpoint_at`` with ``Plant.write_setpoint``, see ``run_plant``) the controller drives the
  process to the new value, and ``hidden=True`` keeps showing the recipe setpoint (T0832).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from aseptic.campaign._primitives import _check_window, _Window
from aseptic.errors import InputError
from aseptic.twin import TAGS_BY_NAME, TagKind

__all__ = ["Freeze", "Geometric", "SetpointChange", "Surge"]

# Denial of view; modify parameter and manipulation of control.
STALE_TECHNIQUES: tuple[str, ...] = ("T0815",)
SETPOINT_TECHNIQUES: tuple[str, ...] = ("T0836", "T0831")


@dataclass(frozen=True)
class Surge(_Window):
    """``y~ = y + peak`` for the first ``surge_h`` hours of the window, then ``y + settle``."""

    peak: float
    settle: float
    surge_h: float

    def __post_init__(self) -> None:
        _check_window("surge", self.tag, self.start_h, self.duration_h)
        for name in ("peak", "settle", "surge_h"):
            if not math.isfinite(getattr(self, name)):
                raise InputError(
                    f"surge on {self.tag!r}: {name} must be finite (got {getattr(self, name)!r})"
                )
        if self.surge_h < 0:
            raise InputError(f"surge on {self.tag!r}: surge_h must be >= 0 (got {self.surge_h!r})")

    def offset_at(self, time_h: float) -> float:
        """The offset added at ``time_h`` (0 outside the window)."""
        if not self.is_active(time_h):
            return 0.0
        return self.peak if time_h < self.start_h + self.surge_h else self.settle

    def apply(self, time_h: float, values: Mapping[str, float]) -> dict[str, float]:
        """The values with the surge's offset added while the attack is active."""
        if not self.is_active(time_h) or self.tag not in values:
            return dict(values)
        return self._replace(values, values[self.tag] + self.offset_at(time_h))


@dataclass(frozen=True)
class Geometric(_Window):
    """``y~ = y + offset_end * alpha_per_h ** (end_h - t)``: an offset growing toward the end."""

    offset_end: float
    alpha_per_h: float

    def __post_init__(self) -> None:
        _check_window("geometric", self.tag, self.start_h, self.duration_h)
        if not math.isfinite(self.offset_end):
            raise InputError(
                f"geometric on {self.tag!r}: offset_end must be finite (got {self.offset_end!r})"
            )
        if not (math.isfinite(self.alpha_per_h) and 0 < self.alpha_per_h < 1):
            raise InputError(
                f"geometric on {self.tag!r}: alpha_per_h must be in (0, 1) (got {self.alpha_per_h!r})"
            )

    def offset_at(self, time_h: float) -> float:
        """The offset added at ``time_h`` (0 outside the window)."""
        if not self.is_active(time_h):
            return 0.0
        return float(self.offset_end * self.alpha_per_h ** (self.end_h - time_h))

    def apply(self, time_h: float, values: Mapping[str, float]) -> dict[str, float]:
        """The values with the geometric offset added while the attack is active."""
        if not self.is_active(time_h) or self.tag not in values:
            return dict(values)
        return self._replace(values, values[self.tag] + self.offset_at(time_h))


@dataclass(frozen=True)
class Freeze(_Window):
    """The tag's last value before ``start_h`` held through the window (stale data, T0815).

    Stateful: it remembers the last value it saw before the window, so give each batch its own.
    """

    _last: list[float] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_window("freeze", self.tag, self.start_h, self.duration_h)

    @property
    def techniques(self) -> tuple[str, ...]:
        """Denial of View."""
        return STALE_TECHNIQUES

    def apply(self, time_h: float, values: Mapping[str, float]) -> dict[str, float]:
        """Remember the value before the window; inside it, report the remembered value."""
        if self.tag not in values:
            return dict(values)
        if time_h < self.start_h:
            self._last[:] = [values[self.tag]]
            return dict(values)
        if not self.is_active(time_h) or not self._last:
            return dict(values)
        return self._replace(values, self._last[0])


@dataclass(frozen=True)
class SetpointChange(_Window):
    """A controller setpoint moved by ``offset`` inside the window (T0836 / T0831).

    ``tag`` is the setpoint (``ph_sp``, ``temperature_sp_k``, ``paa_sp_mg_per_l``). ``apply`` is the
    reporting-path view: the displayed setpoint shows the attacker's value, or the original one
    when ``hidden``. ``setpoint_at`` is what to write into the controller (in-loop placement).
    """

    offset: float
    hidden: bool = False

    def __post_init__(self) -> None:
        _check_window("setpoint change", self.tag, self.start_h, self.duration_h)
        if TAGS_BY_NAME[self.tag].kind is not TagKind.SETPOINT:
            raise InputError(
                f"setpoint change: {self.tag!r} is not a setpoint",
                hint="setpoints: "
                + ", ".join(t.name for t in TAGS_BY_NAME.values() if t.kind is TagKind.SETPOINT),
            )
        if not math.isfinite(self.offset):
            raise InputError(f"setpoint change on {self.tag!r}: offset must be finite (got {self.offset!r})")

    @property
    def techniques(self) -> tuple[str, ...]:
        """Modify Parameter, Manipulation of Control."""
        return SETPOINT_TECHNIQUES

    def setpoint_at(self, time_h: float, recipe_value: float) -> float:
        """The setpoint the controller should use at ``time_h`` under attack."""
        return recipe_value + self.offset if self.is_active(time_h) else recipe_value

    def apply(self, time_h: float, values: Mapping[str, float]) -> dict[str, float]:
        """Reporting path: the displayed setpoint moved (not when ``hidden``: the view keeps the truth)."""
        if self.hidden or not self.is_active(time_h) or self.tag not in values:
            return dict(values)
        return self._replace(values, values[self.tag] + self.offset)

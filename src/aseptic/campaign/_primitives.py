"""Attack primitives on reported values: bias, ramp and replay of one tag.

A primitive sits where an attacker between the plant and the OPC UA server would: it receives the
values of one sample (tag -> value, as ``Plant.step()`` returns them) at batch time ``time_h`` and
returns what the attacker lets through. ``apply`` never mutates its input.

Where to call it decides what the attack is:

- on the *published* values (after the plant's controllers have acted, before the OPC UA server or
  the historian): ATT&CK for ICS T0856 Spoofed Reporting Message / T0832 Manipulation of View. The
  process is untouched; only the operators and Aseptic see false values.
- on the *measurement the controller sees* (inside the twin's control loop, before the PID): the
  controller then drives the true process to make the false value look right, so the true process
  moves (e.g. a +0.5 K bias on ``temperature_k`` cools the broth by 0.5 K while the reported
  temperature stays on setpoint). The twin applies the same ``apply`` to its measurement dict
  before its controllers run; see docs/detect.md "Attacks inside the control loop".
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aseptic.errors import InputError
from aseptic.twin import TAGS_BY_NAME, TagKind

__all__ = ["REPORTING_TECHNIQUES", "Attack", "Bias", "Ramp", "Replay", "apply_attacks"]

# Spoofed Reporting Message, Manipulation of View.
REPORTING_TECHNIQUES: tuple[str, ...] = ("T0856", "T0832")


class Attack(Protocol):
    """An attack primitive: which tag, when, which techniques, and what it does to a sample."""

    @property
    def tag(self) -> str: ...

    @property
    def start_h(self) -> float: ...

    @property
    def end_h(self) -> float: ...

    @property
    def techniques(self) -> tuple[str, ...]: ...

    def is_active(self, time_h: float) -> bool: ...

    def apply(self, time_h: float, values: Mapping[str, float]) -> dict[str, float]: ...


def apply_attacks(attacks: Sequence[Attack], time_h: float, values: Mapping[str, float]) -> dict[str, float]:
    """Apply every attack to one sample, in order (each sees the previous one's output)."""
    out = dict(values)
    for attack in attacks:
        out = attack.apply(time_h, out)
    return out


def _check_window(kind: str, tag: str, start_h: float, duration_h: float) -> None:
    """Validate the tag and time window shared by every primitive.

    Raises:
        InputError: unknown tag (the hint lists the known ones), a batch-state tag, a negative or
            non-finite start or duration.
    """
    spec = TAGS_BY_NAME.get(tag)
    if spec is None:
        raise InputError(
            f"{kind}: unknown tag {tag!r}", hint="known tags: " + ", ".join(sorted(TAGS_BY_NAME))
        )
    if spec.kind is TagKind.STATE:
        raise InputError(
            f"{kind}: tag {tag!r} is batch state, not a reported measurement",
            hint="attack a sensor, actuator, setpoint, soft-sensor or assay tag",
        )
    for name, value in (("start_h", start_h), ("duration_h", duration_h)):
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{kind} on {tag!r}: {name} must be a finite number >= 0 (got {value!r})")


@dataclass(frozen=True)
class _Window:
    tag: str
    start_h: float
    duration_h: float

    @property
    def end_h(self) -> float:
        """End of the attack window (exclusive)."""
        return self.start_h + self.duration_h

    @property
    def techniques(self) -> tuple[str, ...]:
        """ATT&CK for ICS techniques this primitive executes when applied to reported values."""
        return REPORTING_TECHNIQUES

    def is_active(self, time_h: float) -> bool:
        """Whether ``time_h`` (hours since batch start) is inside ``[start_h, start_h + duration_h)``."""
        return self.start_h <= time_h < self.end_h

    def _replace(self, values: Mapping[str, float], new: float) -> dict[str, float]:
        out = dict(values)
        out[self.tag] = new
        return out


@dataclass(frozen=True)
class Bias(_Window):
    """``y~ = y + offset`` inside the window (Cardenas et al. 2011)."""

    offset: float

    def __post_init__(self) -> None:
        _check_window("bias", self.tag, self.start_h, self.duration_h)
        if not math.isfinite(self.offset):
            raise InputError(f"bias on {self.tag!r}: offset must be finite (got {self.offset!r})")

    def apply(self, time_h: float, values: Mapping[str, float]) -> dict[str, float]:
        """The values with the offset added to the tag while the attack is active."""
        if not self.is_active(time_h) or self.tag not in values:
            return dict(values)
        return self._replace(values, values[self.tag] + self.offset)


@dataclass(frozen=True)
class Ramp(_Window):
    """``y~ = y + slope_per_h * (t - start_h)`` inside the window: a stealthy drift."""

    slope_per_h: float

    def __post_init__(self) -> None:
        _check_window("ramp", self.tag, self.start_h, self.duration_h)
        if not math.isfinite(self.slope_per_h):
            raise InputError(f"ramp on {self.tag!r}: slope_per_h must be finite (got {self.slope_per_h!r})")

    def apply(self, time_h: float, values: Mapping[str, float]) -> dict[str, float]:
        """The values with the ramp's offset at ``time_h`` added while the attack is active."""
        if not self.is_active(time_h) or self.tag not in values:
            return dict(values)
        return self._replace(values, values[self.tag] + self.slope_per_h * (time_h - self.start_h))


@dataclass(frozen=True)
class Replay(_Window):
    """``y~(t) = y(record_from_h + (t - start_h))``: an earlier segment of the same tag played back.

    Mo & Sinopoli's replay: the attacker records ``[record_from_h, record_from_h + duration_h)``
    and, inside the attack window, reports the recorded value at the same offset into the segment
    (the recorded sample nearest in time). Stateful: it must see the samples of the recording
    window through ``apply`` first. Before anything was recorded it lets values through unchanged
    (the attacker has nothing to play back), so create it at the start of the batch.
    """

    record_from_h: float
    _times: list[float] = field(default_factory=list, init=False, repr=False, compare=False)
    _values: list[float] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_window("replay", self.tag, self.start_h, self.duration_h)
        if not math.isfinite(self.record_from_h) or self.record_from_h < 0:
            raise InputError(
                f"replay on {self.tag!r}: record_from_h must be >= 0 (got {self.record_from_h!r})"
            )
        if self.record_from_h + self.duration_h > self.start_h:
            raise InputError(
                f"replay on {self.tag!r}: the recording [{self.record_from_h}, "
                f"{self.record_from_h + self.duration_h}) h must end by the attack start {self.start_h} h",
                hint="record an earlier segment at least as long as the attack",
            )

    @property
    def recorded(self) -> int:
        """How many samples have been recorded so far."""
        return len(self._times)

    def apply(self, time_h: float, values: Mapping[str, float]) -> dict[str, float]:
        """Record inside the recording window; inside the attack window, report the recording."""
        if self.tag not in values:
            return dict(values)
        if self.record_from_h <= time_h < self.record_from_h + self.duration_h:
            if not self._times or time_h > self._times[-1]:
                self._times.append(time_h)
                self._values.append(values[self.tag])
            return dict(values)
        if not self.is_active(time_h) or not self._times:
            return dict(values)
        return self._replace(values, self._values[self._nearest(self.record_from_h + time_h - self.start_h)])

    def _nearest(self, t: float) -> int:
        i = bisect.bisect_left(self._times, t)
        if i == 0:
            return 0
        if i == len(self._times):
            return i - 1
        return i if self._times[i] - t < t - self._times[i - 1] else i - 1

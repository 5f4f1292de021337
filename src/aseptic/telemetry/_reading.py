"""A Reading: one value of one tag at one time, with its quality and source."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from aseptic.clock import ensure_utc

__all__ = ["Quality", "Reading"]


class Quality(IntEnum):
    """Measurement quality, in the spirit of OPC UA status codes (Good / Uncertain / Bad)."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one tag at one UTC time.

    ``source`` names who measured it (a device or collector id, e.g. ``fermenter-01/AT-202``).
    ``value`` may be NaN only with ``Quality.BAD``; verification at ingest enforces that rule.
    """

    tag: str
    time: datetime
    value: float
    quality: Quality
    source: str

    def __post_init__(self) -> None:
        ensure_utc(self.time)

    @property
    def is_finite(self) -> bool:
        return math.isfinite(self.value)

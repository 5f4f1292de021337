"""What the gateway needs from the plant, as values: the batch's state and a node's value.

``PlantPort`` is the port the gateway's core talks to; ``TwinLink`` (OPC UA) implements it, and a
test double can too. Node paths are relative to the unit: ``ph_sp`` (a tag), ``Recipe.ph_sp`` (a
recipe parameter), ``Devices.TIC-101.FirmwareDigest``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aseptic.trust import BATCH_STATES

__all__ = ["BatchStatus", "PlantPort", "PlantSnapshot", "batch_state_of"]

# The twin's ISA-88 batch states -> the decision context's batch_state.
_STATES = {"idle": "none", "": "none", "running": "running", "held": "held", "complete": "complete"}


def batch_state_of(twin_state: str) -> str:
    """The policy context's ``batch_state`` for the twin's ISA-88 state (unknown: ``none``).

    ``none`` is the safe reading of anything unexpected: the policies allow setpoint writes only
    in a running (or held) batch.
    """
    state = _STATES.get(twin_state, "none")
    assert state in BATCH_STATES  # noqa: S101 - the table above only names schema states
    return state


@dataclass(frozen=True)
class BatchStatus:
    """The unit's current batch as the plant reports it."""

    batch_id: str  # "" if the plant reports none
    phase: str  # ISA-88 phase name, "" before the first sample
    state: str  # the plant's ISA-88 state: idle, running, held, complete

    @property
    def batch_state(self) -> str:
        """The decision context's ``batch_state``: ``none`` when no batch runs."""
        return batch_state_of(self.state) if self.batch_id else "none"

    @property
    def is_active(self) -> bool:
        return self.batch_state in ("running", "held")

    def to_json(self) -> dict[str, str | bool | None]:
        return {
            "batch": self.batch_id or None,
            "phase": self.phase or None,
            "state": self.state or None,
            "batch_state": self.batch_state,
            "active": self.is_active,
        }


@dataclass(frozen=True)
class PlantSnapshot:
    """One read of what a decision needs: the batch, a node's value, a device's firmware digest."""

    batch: BatchStatus
    value: float | None  # None: the node has no value yet (or a bad status)
    firmware_digest: str | None  # None: the plant reports none for that device


class PlantPort(Protocol):
    """The plant, as the gateway's core sees it. Every method raises ``BackendError`` when the
    plant cannot be reached."""

    def read_batch(self) -> BatchStatus: ...

    def snapshot(self, node: str, device: str) -> PlantSnapshot: ...

    def write(self, node: str, value: float) -> float | None:
        """Write ``value`` to ``node`` as the plant's writer and return the value read back."""
        ...

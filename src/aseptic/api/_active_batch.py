"""The active batch as the ledger knows it: the fallback of ``GET /api/batches/active`` when no
plant is configured or the plant cannot be reached.

The custody pipeline logs a lineage ``START`` audit leaf when a batch begins and a ``COMPLETE`` leaf
when it ends (docs/ledger.md, "Batches and lineage"). The most recent batch with a START and no
COMPLETE is the active one; its phase is the last good ``phase_index`` reading logged since its
START (the ISA-88 phase the plant published), or none if no such reading is in the log yet. The
ledger does not know the plant's ISA-88 state (running or held): ``state`` is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.ledger import Historian, LeafKind, find_batch_windows
from aseptic.twin import Phase

__all__ = ["LedgerBatch", "read_ledger_batch"]

_EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
_PHASES = {phase.value: phase.name for phase in Phase}


@dataclass(frozen=True)
class LedgerBatch:
    """The batch the ledger shows open (``batch_id`` "" if none) and its last logged phase."""

    batch_id: str
    started: str | None  # the START event's time, as logged
    start_leaf: int | None
    phase: str  # "" if no phase_index reading is logged since the START
    phase_time: datetime | None

    @property
    def batch_state(self) -> str:
        """The decision context's ``batch_state``: a batch started and not completed is ``running``."""
        return "running" if self.batch_id else "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch_id or None,
            "phase": self.phase or None,
            "state": None,  # the plant's ISA-88 state: the ledger does not record it
            "batch_state": self.batch_state,
            "active": bool(self.batch_id),
            "started": self.started,
            "start_leaf": self.start_leaf,
            "phase_time": None if self.phase_time is None else format_rfc3339(self.phase_time),
        }


def read_ledger_batch(data_dir: Path) -> LedgerBatch:
    """The most recent batch with a lineage START and no COMPLETE in the ledger of ``data_dir``.

    Raises:
        ConfigError: there is no ledger in ``data_dir``.
    """
    with Historian.open(data_dir) as historian:
        windows = find_batch_windows(historian.entries(LeafKind.AUDIT))
        open_windows = [window for window in windows.values() if window.end is None]
        if not open_windows:
            return LedgerBatch("", None, None, "", None)
        window = max(open_windows, key=lambda w: w.first_leaf)
        rows = [
            row
            for row in historian.query("phase_index", *_EVER)
            if row.leaf >= window.first_leaf and math.isfinite(row.reading.value)
        ]
    phase, phase_time = "", None
    if rows:
        last = max(rows, key=lambda row: (row.reading.time, row.leaf, row.position))
        index = round(last.reading.value)
        phase, phase_time = _PHASES.get(index, f"PHASE_{index}"), last.reading.time
    return LedgerBatch(window.batch_id, window.start.time or None, window.first_leaf, phase, phase_time)

"""Lineage entries: a batch as an OpenLineage-style run, logged as ``audit`` leaves.

A batch is a *run* of the job ``batch`` in the site's namespace. The custody pipeline logs one
``START`` event when the batch begins and one ``COMPLETE`` event when it ends; both are canonical
JSON ``audit`` entries with ``"entry": "lineage"`` (docs/ledger.md, "Batches and lineage"). The two
leaves bound the batch's window: every leaf between them (inclusive) belongs to the batch's evidence.

The COMPLETE event names its inputs (the envelopes of each source, as leaf ranges; the model
versions, by their provenance manifest leaves; the access decisions in the window) and its output
(the batch, with its window and findings), so ``trace_batch`` can walk back from a batch to every
record that fed it, and every step of the walk is a leaf that an inclusion proof covers.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.errors import InputError

__all__ = [
    "LINEAGE_ENTRY",
    "BatchWindow",
    "LineageEvent",
    "batch_run_id",
    "find_batch_windows",
    "lineage_event",
    "mentions_batch",
    "parse_lineage_event",
]

LINEAGE_ENTRY = "lineage"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
PRODUCER = "https://github.com/aseptic/aseptic"
_EVENT_TYPES = ("START", "COMPLETE", "ABORT", "FAIL")
# A fixed namespace so that a batch's run id is the same wherever it is computed.
_RUN_NAMESPACE = uuid.UUID("6f1c2b9e-3d4a-5e8f-9a0b-1c2d3e4f5a6b")


def batch_run_id(origin: str, batch_id: str) -> str:
    """The run id of batch ``batch_id`` of site ``origin``: a UUID v5, stable across processes."""
    return str(uuid.uuid5(_RUN_NAMESPACE, f"{origin}/batch/{batch_id}"))


def mentions_batch(payload: bytes, batch_id: str) -> bool:
    """Whether a JSON payload names ``batch_id`` as a whole word (``batch/B``, ``"B"``; not ``B0``)."""
    pattern = rb"(?<![\w.-])" + re.escape(batch_id.encode("utf-8")) + rb"(?![\w.-])"
    return re.search(pattern, payload) is not None


def lineage_event(
    event_type: str,
    *,
    origin: str,
    batch_id: str,
    time: datetime,
    actor: str,
    inputs: Sequence[Mapping[str, Any]] = (),
    outputs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``audit`` entry of one OpenLineage-style run event of batch ``batch_id``.

    Raises:
        InputError: an unknown event type or an empty batch id.
    """
    if event_type not in _EVENT_TYPES:
        raise InputError(f"lineage event type {event_type!r} is not one of {', '.join(_EVENT_TYPES)}")
    if not batch_id.strip():
        raise InputError("a lineage event needs a batch id")
    return {
        "actor": actor,
        "batch_id": batch_id,
        "entry": LINEAGE_ENTRY,
        "eventTime": format_rfc3339(time),
        "eventType": event_type,
        "inputs": [dict(item) for item in inputs],
        "job": {"name": "batch", "namespace": origin},
        "outputs": [dict(item) for item in outputs],
        "producer": PRODUCER,
        "run": {"runId": batch_run_id(origin, batch_id)},
        "schemaURL": SCHEMA_URL,
    }


@dataclass(frozen=True)
class LineageEvent:
    """A lineage entry read back from the log, with its leaf index."""

    leaf: int
    event_type: str
    batch_id: str
    time: str
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]
    payload: dict[str, Any] = field(repr=False)


def parse_lineage_event(leaf: int, payload: bytes) -> LineageEvent | None:
    """The lineage event in an ``audit`` payload, or None if the entry is something else."""
    try:
        fields = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(fields, dict) or fields.get("entry") != LINEAGE_ENTRY:
        return None
    inputs, outputs = fields.get("inputs", []), fields.get("outputs", [])
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        return None
    return LineageEvent(
        leaf,
        str(fields.get("eventType", "")),
        str(fields.get("batch_id", "")),
        str(fields.get("eventTime", "")),
        tuple(item for item in inputs if isinstance(item, dict)),
        tuple(item for item in outputs if isinstance(item, dict)),
        fields,
    )


@dataclass(frozen=True)
class BatchWindow:
    """A batch's window: the leaves from its START event to its COMPLETE event, inclusive."""

    batch_id: str
    start: LineageEvent
    end: LineageEvent | None  # None: the batch is still open

    @property
    def first_leaf(self) -> int:
        return self.start.leaf

    @property
    def last_leaf(self) -> int | None:
        return None if self.end is None else self.end.leaf


def find_batch_windows(audit_entries: Iterable[tuple[int, bytes]]) -> dict[str, BatchWindow]:
    """Every batch's window, from the ``(leaf, payload)`` of the log's ``audit`` entries in log order.

    The first START of a batch opens its window and the first COMPLETE after it closes it; later
    events of the same batch are ignored here (``trace`` shows them).
    """
    windows: dict[str, BatchWindow] = {}
    for leaf, payload in audit_entries:
        event = parse_lineage_event(leaf, payload)
        if event is None:
            continue
        known = windows.get(event.batch_id)
        if event.event_type == "START" and known is None:
            windows[event.batch_id] = BatchWindow(event.batch_id, event, None)
        elif event.event_type == "COMPLETE" and known is not None and known.end is None:
            windows[event.batch_id] = BatchWindow(event.batch_id, known.start, event)
    return windows

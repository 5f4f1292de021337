"""``trace_record``: from a batch (or any leaf) back through the log to everything that fed it.

The chain is read from the log's own entries: the batch's lineage START and COMPLETE events, the
envelopes, quarantine events, findings and decisions in its window, the provenance manifests of the
model versions it cites, and the entries after it that name it (e-signatures, exports). Every step
names its leaf, so each one can be proven with an inclusion proof. Nothing here is verified: run
``aseptic ledger verify`` (or verify an exported bundle) for that.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aseptic.errors import AsepticError, InputError
from aseptic.ledger._entries import JSON_KINDS, LeafKind
from aseptic.ledger._lineage import BatchWindow, find_batch_windows, mentions_batch
from aseptic.ledger._reader import LogReader, Record
from aseptic.telemetry import Envelope

__all__ = ["Trace", "TraceStep", "trace_record"]


@dataclass(frozen=True)
class TraceStep:
    """One link of the chain: a leaf, its kind, its role for the batch and a one-line summary."""

    leaf: int
    kind: str
    role: str
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "leaf": self.leaf, "role": self.role, "summary": self.summary}


@dataclass
class Trace:
    """The lineage of one batch."""

    batch_id: str
    run_id: str
    first_leaf: int
    last_leaf: int | None
    steps: list[TraceStep] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "counts": self.counts,
            "first_leaf": self.first_leaf,
            "last_leaf": self.last_leaf,
            "problems": self.problems,
            "run_id": self.run_id,
            "steps": [step.to_json() for step in self.steps],
        }

    def lines(self) -> list[str]:
        end = "open" if self.last_leaf is None else str(self.last_leaf)
        out = [f"batch {self.batch_id}  run {self.run_id}  window leaves {self.first_leaf}-{end}"]
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(self.counts.items()))
        out.append(f"  window holds: {counts or 'nothing'}")
        for step in self.steps:
            out.append(f"  <- {step.role:<10} leaf {step.leaf:<8} {step.kind:<10} {step.summary}")
        out.extend(f"  ! {problem}" for problem in self.problems)
        return out


def _summary(record: Record) -> str:
    if record.kind is LeafKind.ENVELOPE:
        try:
            envelope = Envelope.from_bytes(record.payload)
        except AsepticError:
            return "(does not decode)"
        return f"envelope {envelope.sequence} from {envelope.source!r}, {envelope.reading_count} readings"
    if record.kind in JSON_KINDS:
        try:
            fields = json.loads(record.payload)
        except ValueError:
            return "(not JSON)"
        keys = (
            "entry",
            "eventType",
            "type",
            "name",
            "version",
            "detector",
            "principal",
            "action",
            "decision",
        )
        return " ".join(f"{k}={fields[k]}" for k in keys if isinstance(fields.get(k), str | int | float))[
            :160
        ]
    return f"{len(record.payload)} bytes"


def _window_of(windows: dict[str, BatchWindow], record: str, reader: LogReader) -> BatchWindow:
    if record in windows:
        return windows[record]
    if record.isdigit():
        leaf = int(record)
        reader.record(leaf)  # raises if there is no such leaf
        for window in windows.values():
            last = reader.size if window.last_leaf is None else window.last_leaf
            if window.first_leaf <= leaf <= last:
                return window
        raise InputError(
            f"leaf {leaf} is in no batch window", hint="trace a batch id or a leaf inside a batch"
        )
    known = ", ".join(sorted(windows)[:10]) or "none"
    raise InputError(f"no batch {record!r} in the log (batches: {known})")


def trace_record(data_dir: Path, record: str) -> Trace:
    """The lineage chain of batch ``record`` (a batch id), or of the batch whose window holds leaf
    ``record`` (a decimal leaf index).

    Raises:
        InputError: no such batch or leaf.
        ConfigError / IntegrityError / BackendError: the ledger cannot be read.
    """
    with LogReader.open(data_dir) as reader:
        windows = find_batch_windows(reader.iter_payloads(LeafKind.AUDIT))
        window = _window_of(windows, record, reader)
        start, end = window.start, window.end
        trace = Trace(
            window.batch_id,
            str(start.payload.get("run", {}).get("runId", "")),
            window.first_leaf,
            window.last_leaf,
        )
        last = reader.size - 1 if window.last_leaf is None else window.last_leaf
        in_window = reader.records(window.first_leaf, last + 1)
        trace.counts = dict(Counter(r.kind.value for r in in_window))
        trace.steps.append(TraceStep(start.leaf, "audit", "START", _summary(reader.record(start.leaf))))
        if end is not None:
            trace.steps.append(TraceStep(end.leaf, "audit", "COMPLETE", _summary(reader.record(end.leaf))))
        event = end if end is not None else start
        for item in event.inputs:
            name = str(item.get("name", "?"))
            ledger_facet = item.get("facets", {}).get("ledger", {})
            if "leaf" in ledger_facet:
                leaf = int(ledger_facet["leaf"])
                try:
                    cited = reader.record(leaf)
                    trace.steps.append(
                        TraceStep(leaf, cited.kind.value, "input", f"{name}: {_summary(cited)}")
                    )
                except InputError:
                    trace.problems.append(f"input {name} cites leaf {leaf}, which is not in the log")
            elif "first_leaf" in ledger_facet:
                first, final = int(ledger_facet["first_leaf"]), int(ledger_facet["last_leaf"])
                count = int(ledger_facet.get("count", 0))
                found = sum(1 for r in in_window if r.kind is LeafKind.ENVELOPE and first <= r.leaf <= final)
                trace.steps.append(
                    TraceStep(
                        first, "envelope", "input", f"{name}: {count} envelopes, leaves {first}-{final}"
                    )
                )
                if found < count:
                    trace.problems.append(
                        f"{name}: the event names {count} envelopes, the window holds {found}"
                    )
            elif "leaves" in ledger_facet:
                for leaf in ledger_facet["leaves"]:
                    cited = reader.record(int(leaf))
                    step = TraceStep(cited.leaf, cited.kind.value, "input", f"{name}: {_summary(cited)}")
                    trace.steps.append(step)
        for item in event.outputs:
            for leaf in item.get("facets", {}).get("findings", {}).get("leaves", []):
                trace.steps.append(
                    TraceStep(int(leaf), "finding", "output", _summary(reader.record(int(leaf))))
                )
        for kind in JSON_KINDS:
            for leaf, payload in reader.iter_payloads(kind, last + 1):
                if mentions_batch(payload, window.batch_id):
                    trace.steps.append(
                        TraceStep(leaf, kind.value, "after", _summary(Record(leaf, kind, payload)))
                    )
    return trace

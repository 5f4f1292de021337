"""The ISA-88 batch record, assembled from the log: nothing here is stored, everything is read back.

A batch's window is the leaves from its lineage START to its COMPLETE event (docs/ledger.md). The
record lists what happened in it: phases (from the ``phase_index`` readings), equipment (the unit and
the devices that reported), materials (feed totals integrated from actuator readings), readings per
tag, findings (in the window or naming the batch), deviations (``deviation:`` record changes),
genealogy (the COMPLETE event's inputs and outputs) and the e-signatures on ``batch:<id>``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aseptic.audit import ELECTRONIC_SIGNATURE, ElectronicSignature, record_digest
from aseptic.clock import format_rfc3339
from aseptic.errors import InputError
from aseptic.ledger import LeafKind, StoredReading, find_batch_windows
from aseptic.twin import TAGS_BY_NAME, Phase, TagKind

__all__ = [
    "BatchRecord",
    "BatchSource",
    "FindingRef",
    "PhaseSpan",
    "assemble_batch_record",
    "batch_record_id",
    "finding_ref",
]

_EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


class BatchSource(Protocol):
    """What the record is read from (``aseptic.ledger.Historian`` is one)."""

    def entries(self, kind: LeafKind, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]: ...

    def tags(self) -> list[str]: ...

    def query(self, tag: str, start: datetime, end: datetime) -> tuple[StoredReading, ...]: ...


def batch_record_id(batch_id: str) -> str:
    """The record id e-signatures on batch ``batch_id``'s record carry."""
    return f"batch:{batch_id}"


@dataclass(frozen=True)
class PhaseSpan:
    """One ISA-88 phase as the ``phase_index`` tag reported it: first and last reading time."""

    phase: str
    index: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class FindingRef:
    """A finding leaf that concerns the batch, with the digest an assessment signs."""

    leaf: int
    digest: str
    detector: str
    time: str
    technique: str | None
    tags: tuple[str, ...]
    payload: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class BatchRecord:
    """Batch ``batch_id``'s record. ``digest`` is what the reviewer and approver sign."""

    batch_id: str
    first_leaf: int
    last_leaf: int | None
    start: datetime | None
    end: datetime | None
    phases: tuple[PhaseSpan, ...]
    unit: str | None
    devices: tuple[str, ...]
    materials: Mapping[str, float]
    readings: Mapping[str, int]
    findings: tuple[FindingRef, ...]
    deviations: tuple[Mapping[str, Any], ...]
    genealogy: Mapping[str, Any]
    signatures: tuple[tuple[int, ElectronicSignature], ...]

    @property
    def record_id(self) -> str:
        return batch_record_id(self.batch_id)

    @property
    def completed(self) -> bool:
        return self.last_leaf is not None

    def content(self) -> dict[str, Any]:
        """The signed content: everything but the signatures (canonical JSON-able)."""
        return {
            "batch_id": self.batch_id,
            "window": {"first_leaf": self.first_leaf, "last_leaf": self.last_leaf},
            "start": None if self.start is None else format_rfc3339(self.start),
            "end": None if self.end is None else format_rfc3339(self.end),
            "phases": [
                {
                    "phase": p.phase,
                    "index": p.index,
                    "start": format_rfc3339(p.start),
                    "end": format_rfc3339(p.end),
                }
                for p in self.phases
            ],
            "equipment": {"unit": self.unit, "devices": list(self.devices)},
            "materials": {k: round(v, 6) for k, v in sorted(self.materials.items())},
            "readings": dict(sorted(self.readings.items())),
            "findings": [{"leaf": f.leaf, "sha256": f.digest} for f in self.findings],
            "deviations": [dict(d) for d in self.deviations],
            "genealogy": dict(self.genealogy),
        }

    @property
    def digest(self) -> str:
        return record_digest(self.content())


def _json(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _phases(series: Sequence[StoredReading]) -> tuple[PhaseSpan, ...]:
    spans: list[PhaseSpan] = []
    for item in sorted(series, key=lambda r: r.reading.time):
        value = item.reading.value
        if value != value:  # NaN: a bad reading says nothing about the phase
            continue
        index = round(value)
        if spans and spans[-1].index == index:
            last = spans[-1]
            spans[-1] = PhaseSpan(last.phase, index, last.start, item.reading.time)
            continue
        name = Phase(index).name if index in {p.value for p in Phase} else f"PHASE_{index}"
        spans.append(PhaseSpan(name, index, item.reading.time, item.reading.time))
    return tuple(spans)


def _total(series: Sequence[StoredReading]) -> float:
    """Trapezoid integral over hours of a ``.../h`` rate (NaN readings skipped)."""
    points = sorted((r.reading.time, r.reading.value) for r in series if r.reading.value == r.reading.value)
    total = 0.0
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        total += (v0 + v1) / 2.0 * (t1 - t0).total_seconds() / 3600.0
    return total


def _material_name(tag: str) -> str | None:
    spec = TAGS_BY_NAME.get(tag)
    if spec is None or spec.kind is not TagKind.ACTUATOR or not spec.unit.endswith("/h"):
        return None
    return tag.removesuffix("_per_h") if tag.endswith("_per_h") else f"{tag}_total"


def finding_ref(leaf: int, payload: bytes, fields: Mapping[str, Any] | None = None) -> FindingRef:
    """The finding logged at ``leaf`` with ``payload``.

    Raises:
        InputError: the payload is not a JSON object.
    """
    fields = _json(payload) if fields is None else fields
    if fields is None:
        raise InputError(f"finding leaf {leaf} is not a JSON object")
    tags = tuple(str(c.get("tag")) for c in fields.get("contributions", []) if isinstance(c, dict))
    technique = fields.get("technique")
    return FindingRef(
        leaf,
        record_digest(payload),
        str(fields.get("detector", "")),
        str(fields.get("time", "")),
        None if technique is None else str(technique),
        tags,
        dict(fields),
    )


def assemble_batch_record(source: BatchSource, batch_id: str) -> BatchRecord:
    """Batch ``batch_id``'s record, read from ``source`` (reads only; verification is separate).

    Raises:
        InputError: no lineage START of that batch in the log.
    """
    audit = source.entries(LeafKind.AUDIT)
    window = find_batch_windows(audit).get(batch_id)
    if window is None:
        raise InputError(
            f"batch {batch_id!r} has no lineage START event in the log",
            hint="`aseptic ledger trace` lists what the log holds",
        )
    first, last = window.first_leaf, window.last_leaf
    stop = None if last is None else last + 1

    def inside(leaf: int) -> bool:
        return leaf >= first and (stop is None or leaf < stop)

    series: dict[str, list[StoredReading]] = {}
    for tag in source.tags():
        rows = [r for r in source.query(tag, *_EVER) if inside(r.leaf)]
        if rows:
            series[tag] = rows
    times = [r.reading.time for rows in series.values() for r in rows]
    # A reading's source is ``<unit>/<device>`` (e.g. ``fermenter-01/AT-202``).
    sources = {r.reading.source for rows in series.values() for r in rows}
    units = sorted({s.rsplit("/", 1)[0].rsplit("/", 1)[-1] for s in sources if "/" in s})
    devices = sorted({TAGS_BY_NAME[t].device for t in series if t in TAGS_BY_NAME})
    materials = {name: _total(series[t]) for t in series if (name := _material_name(t)) is not None}

    findings: list[FindingRef] = []
    for leaf, payload in source.entries(LeafKind.FINDING):
        fields = _json(payload)
        if fields is None or not (inside(leaf) or fields.get("batch_id") == batch_id):
            continue
        findings.append(finding_ref(leaf, payload, fields))

    deviations = []
    for leaf, payload in audit:
        fields = _json(payload)
        if fields is not None and inside(leaf) and str(fields.get("record", "")).startswith("deviation:"):
            deviations.append({"leaf": leaf, **fields})

    signatures: list[tuple[int, ElectronicSignature]] = []
    for leaf, payload in source.entries(LeafKind.SIGNATURE, first):
        fields = _json(payload)
        if fields is None or fields.get("entry") != ELECTRONIC_SIGNATURE:
            continue
        if fields.get("record") == batch_record_id(batch_id):
            signatures.append((leaf, ElectronicSignature.from_payload(fields)))

    genealogy: dict[str, Any] = {"inputs": [], "outputs": []}
    if window.end is not None:
        genealogy = {
            "inputs": sorted(str(i.get("name", "")) for i in window.end.inputs),
            "outputs": sorted(str(o.get("name", "")) for o in window.end.outputs),
        }
    return BatchRecord(
        batch_id=batch_id,
        first_leaf=first,
        last_leaf=last,
        start=min(times) if times else None,
        end=max(times) if times else None,
        phases=_phases(series.get("phase_index", [])),
        unit=units[0] if len(units) == 1 else (", ".join(units) or None),
        devices=tuple(devices),
        materials=materials,
        readings={tag: len(rows) for tag, rows in series.items()},
        findings=tuple(findings),
        deviations=tuple(deviations),
        genealogy=genealogy,
        signatures=tuple(signatures),
    )

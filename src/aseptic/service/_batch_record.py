"""The batch record of the custody pipeline: what fed a batch, collected while it runs.

A batch is bounded in the log by two lineage entries (``aseptic.ledger.lineage_event``): START when
it begins, COMPLETE when it ends. Between them the pipeline notes the leaf of every envelope (per
source), quarantine event, finding and access decision, so that the COMPLETE event can name them as
the run's inputs and outputs (docs/ledger.md, "Batches and lineage").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchTracker", "ModelRef"]


@dataclass(frozen=True)
class ModelRef:
    """A model version that fed a batch, by its provenance manifest leaf in the log (if recorded)."""

    name: str
    version: str
    sha256: str
    manifest_leaf: int | None = None

    def to_dataset(self, namespace: str) -> dict[str, Any]:
        facets: dict[str, Any] = {"version": {"version": self.version}, "sha256": {"digest": self.sha256}}
        if self.manifest_leaf is not None:
            facets["ledger"] = {"leaf": self.manifest_leaf}
        return {"facets": facets, "name": f"model/{self.name}", "namespace": namespace}


@dataclass
class _Source:
    first_leaf: int
    last_leaf: int
    first_sequence: int
    last_sequence: int
    envelopes: int = 0
    readings: int = 0


@dataclass
class BatchTracker:
    """The leaves of one open batch, by role."""

    batch_id: str
    start_leaf: int
    models: tuple[ModelRef, ...] = ()
    sources: dict[str, _Source] = field(default_factory=dict)
    quarantine: list[int] = field(default_factory=list)
    findings: list[int] = field(default_factory=list)

    def add_envelope(self, leaf: int, source: str, sequence: int, readings: int) -> None:
        known = self.sources.get(source)
        if known is None:
            known = self.sources[source] = _Source(leaf, leaf, sequence, sequence)
        known.last_leaf, known.last_sequence = leaf, sequence
        known.envelopes += 1
        known.readings += readings

    def inputs(self, namespace: str, decisions: list[int]) -> list[dict[str, Any]]:
        """The run's input datasets: envelopes per source, model versions, decisions, quarantine."""
        out: list[dict[str, Any]] = [
            {
                "facets": {
                    "ledger": {"count": s.envelopes, "first_leaf": s.first_leaf, "last_leaf": s.last_leaf},
                    "readings": {"count": s.readings},
                    "sequence": {"first": s.first_sequence, "last": s.last_sequence},
                },
                "name": f"envelopes/{source}",
                "namespace": namespace,
            }
            for source, s in sorted(self.sources.items())
        ]
        out.extend(model.to_dataset(namespace) for model in self.models)
        if decisions:
            out.append(
                {"facets": {"ledger": {"leaves": decisions}}, "name": "decisions", "namespace": namespace}
            )
        if self.quarantine:
            out.append(
                {
                    "facets": {"ledger": {"leaves": self.quarantine}},
                    "name": "quarantine",
                    "namespace": namespace,
                }
            )
        return out

    def outputs(self, namespace: str) -> list[dict[str, Any]]:
        """The run's output: the batch, with its window start and its findings."""
        return [
            {
                "facets": {"findings": {"leaves": self.findings}, "window": {"first_leaf": self.start_leaf}},
                "name": f"batch/{self.batch_id}",
                "namespace": namespace,
            }
        ]

"""Reading many batch records from one read of the log (the batch list)."""

from __future__ import annotations

from datetime import UTC, datetime

from aseptic.ledger import Historian, LeafKind, StoredReading

__all__ = ["ReadOnce"]

_EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


class ReadOnce:
    """A ``BatchSource`` over a historian that reads each tag's readings and each leaf kind once:
    listing N batches assembles N records from one read of the log, not N."""

    def __init__(self, historian: Historian) -> None:
        self._historian = historian
        self._entries: dict[LeafKind, list[tuple[int, bytes]]] = {}
        self._readings: dict[str, tuple[StoredReading, ...]] = {}
        self._tags: list[str] | None = None

    def entries(self, kind: LeafKind, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]:
        if kind not in self._entries:
            self._entries[kind] = self._historian.entries(kind)
        return [(leaf, p) for leaf, p in self._entries[kind] if leaf >= start and (end is None or leaf < end)]

    def tags(self) -> list[str]:
        if self._tags is None:
            self._tags = self._historian.tags()
        return self._tags

    def query(self, tag: str, start: datetime, end: datetime) -> tuple[StoredReading, ...]:
        if tag not in self._readings:
            self._readings[tag] = self._historian.query(tag, _EVER[0], _EVER[1])
        return tuple(r for r in self._readings[tag] if start <= r.reading.time < end)

"""The historian: readings by tag and time, read from the ``readings`` table of ``ledger.db``.

Each row names the envelope leaf it came from and its position in that envelope, so any value a
query returns can be traced to a signed envelope and proven in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aseptic.clock import ensure_utc
from aseptic.errors import InputError, IntegrityError
from aseptic.ledger._entries import JSON_KINDS, LeafKind, ReadingRow, micros_of, time_of
from aseptic.ledger._store import LogStore, open_store
from aseptic.telemetry import Quality, Reading
from aseptic.twin import TAGS_BY_NAME

__all__ = ["Historian", "StoredReading", "query_readings"]


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading from the historian, with the log leaf of its envelope and its position there."""

    reading: Reading
    leaf: int
    position: int


def query_readings(store: LogStore, tag: str, start: datetime, end: datetime) -> tuple[StoredReading, ...]:
    """Readings of ``tag`` with ``start <= time < end``, in time order.

    Raises:
        InputError: ``start`` is after ``end``, or ``tag`` is neither in the tag catalogue nor stored
            (the hint lists the known tags).
    """
    start, end = ensure_utc(start), ensure_utc(end)
    if end < start:
        raise InputError(f"time range ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    rows = store.query_readings(tag, micros_of(start), micros_of(end))
    if not rows and tag not in TAGS_BY_NAME:
        stored = store.stored_tags()
        if tag not in stored:
            known = sorted(set(TAGS_BY_NAME) | set(stored))
            raise InputError(f"unknown tag {tag!r}", hint="known tags: " + ", ".join(known))
    return tuple(_stored_reading(row) for row in rows)


def _stored_reading(row: ReadingRow) -> StoredReading:
    leaf, position, tag, time_us, value, quality, source = row
    try:
        reading = Reading(
            tag, time_of(time_us), float("nan") if value is None else float(value), Quality(quality), source
        )
    except (ValueError, OverflowError, TypeError) as exc:
        raise IntegrityError(
            f"readings row (leaf {leaf}, position {position}) is not a reading ({exc})",
            hint="run `aseptic ledger verify`",
        ) from None
    return StoredReading(reading, leaf, position)


class Historian:
    """Read-only historian queries on a data directory (no keys needed)."""

    def __init__(self, store: LogStore) -> None:
        self._store = store

    @classmethod
    def open(cls, data_dir: Path) -> Historian:
        """Open the ledger of ``data_dir`` (``ledger.db`` or its PostgreSQL store) read-only.

        Raises:
            ConfigError: there is no ledger in ``data_dir``.
            InputError: the file is not a ledger.
            IntegrityError: the file is corrupt.
        """
        return cls(open_store(data_dir, read_only=True))

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Historian:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, tag: str, start: datetime, end: datetime) -> tuple[StoredReading, ...]:
        """See ``query_readings``."""
        return query_readings(self._store, tag, start, end)

    def tags(self) -> list[str]:
        """The tags the historian holds readings of."""
        return self._store.stored_tags()

    def entries(self, kind: LeafKind, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]:
        """``(leaf, payload)`` of the stored ``kind`` entries (finding, audit, decision, signature)
        with ``start <= leaf < end``, in log order; ``aseptic ledger verify`` is what proves them.

        Raises:
            InputError: ``kind`` is not a JSON kind.
        """
        if kind not in JSON_KINDS:
            raise InputError(f"{kind.value} entries are not JSON entries")
        return self._store.payloads(kind, start, self._store.leaf_count() if end is None else end)

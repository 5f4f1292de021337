"""The merge of ``verify_ledger``: every table walked in leaf order, one ``LeafRows`` per log index.

Rows are matched on their leaf index, so a missing, extra or misfiled row is seen where it sits,
and each row is checked against what it must be derivable from (docs/ledger.md, "Verification").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aseptic.crypto import PublicKey
from aseptic.ledger._entries import TABLE_OF_KIND, LeafKind, ReadingRow, hash_entry
from aseptic.ledger._report import Auditor, Discrepancy
from aseptic.ledger._tree import HASH_SIZE, Frontier, Hash
from aseptic.ledger._verify_rows import TABLE, check_envelope, check_payload, describe

__all__ = ["LeafRows", "Pending", "Scan", "merge_rows"]

# A store's row reader (``LogStore.scan``): the rows of one fixed query, streamed in order.
Scan = Callable[[str], Iterator[tuple[Any, ...]]]

_QUERY: dict[LeafKind, str] = {
    LeafKind.ENVELOPE: "SELECT leaf, source, sequence, digest, raw FROM envelopes ORDER BY leaf",
    **{
        kind: f"SELECT leaf, payload FROM {table} ORDER BY leaf"  # noqa: S608 - fixed table names
        for kind, table in TABLE_OF_KIND.items()
        if kind is not LeafKind.ENVELOPE
    },
}


@dataclass(frozen=True)
class LeafRows:
    """One log index: its stored leaf hash and the hash recomputed from its row."""

    index: int
    table: str
    column: str
    stored: Hash | None
    recomputed: Hash | None

    def _hashes(self) -> dict[str, str]:
        return {"expected": bytes(self.stored or b"").hex(), "found": bytes(self.recomputed or b"").hex()}

    def mismatch(self) -> Discrepancy:
        return Discrepancy(
            self.table, f"leaf {self.index}", self.column, "does not hash to its leaf hash", **self._hashes()
        )

    def row_altered(self, signer: str) -> Discrepancy:
        problem = f"was altered: it no longer hashes to its leaf hash, which {signer} signed"
        return Discrepancy(self.table, f"leaf {self.index}", self.column, problem, **self._hashes())

    def hash_altered(self, signer: str) -> Discrepancy:
        return Discrepancy(
            "leaves",
            f"idx {self.index}",
            "hash",
            f"was altered: the {self.table} row hashes to the leaf {signer} signed",
            expected=bytes(self.recomputed or b"").hex(),
            found=bytes(self.stored or b"").hex(),
        )

    def unresolved(self, anchored: bool) -> Discrepancy:
        why = "and neither gives the next signed root" if anchored else "and no checkpoint covers it yet"
        return Discrepancy(
            self.table,
            f"leaf {self.index}",
            self.column,
            f"does not hash to its leaf hash ({why}: either may have been altered)",
            **self._hashes(),
        )


@dataclass
class Pending:
    """A row/leaf-hash mismatch waiting for a signed root: the tree as if the stored hash were right."""

    leaf: LeafRows
    position: int | None
    frontier: Frontier


class _Cursor:
    """A cursor over rows ordered by their first column, with one row of look-ahead."""

    def __init__(self, rows: Iterator[tuple[Any, ...]]) -> None:
        self._rows = rows
        self.head: tuple[Any, ...] | None = next(rows, None)

    def advance(self) -> None:
        self.head = next(self._rows, None)

    def take(self, index: int) -> tuple[Any, ...] | None:
        if self.head is None or self.head[0] != index:
            return None
        row = self.head
        self.advance()
        return row


def _key(leaf: object) -> float:
    """Where a (possibly tampered) leaf value sorts among indexes: text and blobs after all numbers."""
    return float(leaf) if isinstance(leaf, int | float) and not isinstance(leaf, bool) else math.inf


class _Readings(_Cursor):
    """The readings rows by (leaf, position); rows that no envelope claims are reported as they pass."""

    def __init__(self, rows: Iterator[tuple[Any, ...]], audit: Auditor) -> None:
        super().__init__(rows)
        self._audit = audit

    def _orphan(self) -> None:
        assert self.head is not None  # noqa: S101 - callers check
        leaf, position, *rest = self.head
        self._audit.add(
            Discrepancy(
                "readings",
                f"leaf {describe(leaf)} position {describe(position)}",
                "leaf",
                "row belongs to no envelope (inserted?)",
                found=describe(tuple(rest)),
            )
        )
        self.advance()

    def take_rows(self, index: int) -> list[ReadingRow]:
        rows: list[ReadingRow] = []
        while self.head is not None:
            leaf = self.head[0]
            if _key(leaf) < index or (_key(leaf) == index and type(leaf) is not int):
                self._orphan()
            elif leaf == index:
                rows.append(self.head)
                self.advance()
            else:
                break
        return rows

    def drain_through(self, index: float) -> None:
        while self.head is not None and _key(self.head[0]) <= index:
            self._orphan()


def merge_rows(scan: Scan, audit: Auditor) -> Iterator[LeafRows]:
    """Walk every table in leaf order, checking rows as they pass; yield each log index's hashes."""
    count = next(scan("SELECT coalesce(max(idx) + 1, 0) FROM leaves"))[0]
    leaves = _Cursor(scan("SELECT idx, kind, hash FROM leaves ORDER BY idx"))
    tables = {kind: _Cursor(scan(query)) for kind, query in _QUERY.items()}
    readings = _Readings(
        scan(
            "SELECT leaf, position, tag, time_us, value, quality, source FROM readings"
            " ORDER BY leaf, position"
        ),
        audit,
    )
    keys: dict[str, dict[str, PublicKey]] = {}
    expected = 0
    while True:
        heads = [c.head[0] for c in (leaves, *tables.values()) if c.head is not None]
        if not heads:
            break
        index = min(heads)
        if index < expected:  # only a negative index can sort before the next one expected
            for cursor, table in ((leaves, "leaves"), *((c, TABLE[k]) for k, c in tables.items())):
                if cursor.take(index) is not None:
                    audit.add(Discrepancy(table, f"leaf {index}", "leaf", "negative leaf index (inserted?)"))
            continue
        if index >= count:  # beyond the last leaf: rows that no leaf covers
            if leaves.take(index) is not None:  # a store without a read snapshot, appended meanwhile
                audit.add(Discrepancy("leaves", f"idx {index}", "idx", "leaf beyond the counted size"))
            for kind, cursor in tables.items():
                if cursor.take(index) is not None:
                    audit.add(
                        Discrepancy(
                            TABLE[kind], f"leaf {index}", "leaf", "row has no leaf in the log (inserted?)"
                        )
                    )
            readings.drain_through(index)
            continue
        if index > expected:
            gap = f"idx {expected}" if index == expected + 1 else f"idx {expected} to {index - 1}"
            audit.add(Discrepancy("leaves", gap, "*", "no leaf and no row at this index (deleted?)"))
        expected = index + 1
        leaf = leaves.take(index)
        rows = {kind: row for kind, cursor in tables.items() if (row := cursor.take(index)) is not None}
        leaf_rows, check_rows = _examine(index, leaf, rows, audit, readings, keys)
        yield leaf_rows  # the caller compares the hashes first: that is the most precise finding
        if check_rows is not None:
            check_rows()
        readings.drain_through(index)
    readings.drain_through(math.inf)


def _examine(
    index: int,
    leaf: tuple[Any, ...] | None,
    rows: dict[LeafKind, tuple[Any, ...]],
    audit: Auditor,
    readings: _Readings,
    keys: dict[str, dict[str, PublicKey]],
) -> tuple[LeafRows, Callable[[], None] | None]:
    """The hashes of log index ``index``, and the checks of its row to run once they are compared."""
    where = f"idx {index}"
    stored: Hash | None = None
    kind: LeafKind | None = None
    if leaf is not None:
        _, kind_text, leaf_hash = leaf
        if isinstance(leaf_hash, bytes) and len(leaf_hash) == HASH_SIZE:
            stored = Hash(leaf_hash)
        else:
            audit.add(
                Discrepancy("leaves", where, "hash", "is not a 32-byte hash", found=describe(leaf_hash))
            )
        kind = next((k for k in LeafKind if k.value == kind_text), None)
        if kind is None:
            audit.add(
                Discrepancy(
                    "leaves",
                    where,
                    "kind",
                    "is not a leaf kind",
                    expected=" | ".join(k.value for k in LeafKind),
                    found=describe(kind_text),
                )
            )
    use = kind if kind in rows else next(iter(rows), None)
    if leaf is None and use is not None:
        audit.add(
            Discrepancy(
                "leaves",
                where,
                "*",
                "row is missing (deleted?)",
                expected=f"a {use.value} leaf",
                found="no row",
            )
        )
    elif kind is not None and use is not kind:
        if use is not None:
            audit.add(
                Discrepancy(
                    "leaves",
                    where,
                    "kind",
                    f"names the wrong table: the row is in {TABLE[use]}",
                    expected=use.value,
                    found=kind.value,
                )
            )
        else:
            audit.add(
                Discrepancy(
                    TABLE[kind],
                    f"leaf {index}",
                    "*",
                    "row is missing (deleted?)",
                    expected=f"the row of {kind.value} leaf {index}",
                    found="no row",
                )
            )
    for extra in rows:
        if extra is not use:
            audit.add(
                Discrepancy(
                    TABLE[extra],
                    f"leaf {index}",
                    "leaf",
                    f"extra row: leaf {index} is a {use.value if use else '?'} (inserted?)",
                )
            )
    recomputed: Hash | None = None
    table, column = (
        (TABLE[use], "raw" if use is LeafKind.ENVELOPE else "payload") if use else ("leaves", "hash")
    )
    check_rows: Callable[[], None] | None = None
    if use is not None:
        audit.report.leaves[use.value] = audit.report.leaves.get(use.value, 0) + 1
        row = rows[use]
        payload = row[-1]
        if isinstance(payload, bytes):
            recomputed = hash_entry(use, payload)
        else:
            audit.add(
                Discrepancy(table, f"leaf {index}", column, f"is a {type(payload).__name__}, not a BLOB")
            )
        if use is LeafKind.ENVELOPE:
            rows_of_envelope = readings.take_rows(index)
            check_rows = lambda: check_envelope(index, row, rows_of_envelope, keys, audit)  # noqa: E731
        elif isinstance(payload, bytes):
            kind_used = use
            check_rows = lambda: check_payload(kind_used, index, payload, keys, audit)  # noqa: E731
    return LeafRows(index, table, column, stored, recomputed), check_rows

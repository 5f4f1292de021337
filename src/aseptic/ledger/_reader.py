"""Read-only access to a stored log for export, tracing and witnessing: records by leaf, checkpoints
and proofs (with the interior-node cache of ``_nodes`` when the caller may write ``state.db``).

Nothing read here is trusted: export checks every proof it makes against a signed root, and the
bundle's verifier re-hashes every record (docs/ledger.md, "Evidence bundles").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aseptic.errors import InputError
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._entries import TABLE_OF_KIND, LeafKind
from aseptic.ledger._nodes import NodeCache, subtree_root_with
from aseptic.ledger._proof import consistency_proof, inclusion_proof
from aseptic.ledger._sqlite import SqliteStore, sqlite_errors
from aseptic.ledger._tree import Hash

__all__ = ["LogReader", "Record"]


@dataclass(frozen=True)
class Record:
    """One leaf: its index, its kind and the exact payload bytes that hash to it."""

    leaf: int
    kind: LeafKind
    payload: bytes


class LogReader:
    """A read-only view of ``D/ledger.db``. Open with ``LogReader.open``; close when done."""

    def __init__(self, store: SqliteStore, nodes: NodeCache | None) -> None:
        self._store = store
        self._nodes = nodes
        self.size = store.leaf_count()
        self._subtree_root = subtree_root_with(nodes, store.iter_leaf_hashes)

    @classmethod
    def open(cls, data_dir: Path, *, node_cache: bool = False) -> LogReader:
        """Open ``data_dir/ledger.db`` read-only; with ``node_cache``, bring ``state.db``'s node cache
        up to date first (it is written, so only on the site's own machine).

        Raises:
            ConfigError: no ledger there.
            InputError, IntegrityError, BackendError: not a ledger, a corrupt file, SQLite failed.
        """
        store = SqliteStore.open_read_only(data_dir / "ledger.db")
        nodes = None
        if node_cache:
            nodes = NodeCache.open(data_dir / "state.db")
            nodes.sync(store.leaf_count(), store.iter_leaf_hashes)
        return cls(store, nodes)

    def close(self) -> None:
        self._store.close()
        if self._nodes is not None:
            self._nodes.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def leaf_hash(self, index: int) -> Hash:
        for leaf_hash in self._store.iter_leaf_hashes(index, index + 1):
            return leaf_hash
        raise InputError(f"leaf {index} is not in a log of {self.size} leaves")

    def records(self, start: int, end: int) -> list[Record]:
        """Every record with ``start <= leaf < end``, in log order (kinds from the ``leaves`` table)."""
        out: list[Record] = []
        with sqlite_errors(str(self._store.path)):
            conn = self._store.conn
            for kind, table in TABLE_OF_KIND.items():
                column = "raw" if kind is LeafKind.ENVELOPE else "payload"
                rows = conn.execute(
                    f"SELECT leaf, {column} FROM {table} WHERE leaf >= ? AND leaf < ?",  # noqa: S608 - fixed
                    (start, end),
                )
                out.extend(Record(int(leaf), kind, bytes(payload)) for leaf, payload in rows)
        out.sort(key=lambda record: record.leaf)
        return out

    def record(self, leaf: int) -> Record:
        """The record at ``leaf``.

        Raises:
            InputError: no record there.
        """
        found = self.records(leaf, leaf + 1)
        if not found:
            raise InputError(f"no record at leaf {leaf} (the log has {self.size} leaves)")
        return found[0]

    def iter_payloads(self, kind: LeafKind, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """``(leaf, payload)`` of every record of ``kind`` from ``start`` on, in log order."""
        table = TABLE_OF_KIND[kind]
        column = "raw" if kind is LeafKind.ENVELOPE else "payload"
        with sqlite_errors(str(self._store.path)):
            cursor = self._store.conn.execute(
                f"SELECT leaf, {column} FROM {table} WHERE leaf >= ? ORDER BY leaf",  # noqa: S608 - fixed
                (start,),
            )
            for leaf, payload in cursor:
                yield int(leaf), bytes(payload)

    def key_leaves(self, before: int) -> list[Record]:
        """Every collector key record logged before leaf ``before``."""
        return [
            Record(leaf, LeafKind.KEY, p) for leaf, p in self.iter_payloads(LeafKind.KEY) if leaf < before
        ]

    def checkpoints(self) -> list[Checkpoint]:
        return self._store.checkpoints()

    def inclusion_proof(self, index: int, size: int) -> tuple[Hash, ...]:
        if size > self.size:
            raise InputError(f"no tree of {size} leaves in a log of {self.size}")
        return inclusion_proof(index, size, self._subtree_root)

    def consistency_proof(self, size1: int, size2: int) -> tuple[Hash, ...]:
        if size2 > self.size:
            raise InputError(f"no tree of {size2} leaves in a log of {self.size}")
        return consistency_proof(size1, size2, self._subtree_root)

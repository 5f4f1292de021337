"""Read-only access to a stored log for export, tracing and witnessing: records by leaf, checkpoints
and proofs (with the interior-node cache of ``_nodes`` when the caller may write ``state.db``).

Nothing read here is trusted: export checks every proof it makes against a signed root, and the
bundle's verifier re-hashes every record (docs/ledger.md, "Evidence bundles").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aseptic.crypto import PublicKey
from aseptic.errors import InputError
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._entries import TABLE_OF_KIND, LeafKind
from aseptic.ledger._nodes import NodeCache, subtree_root_with
from aseptic.ledger._proof import consistency_proof, inclusion_proof
from aseptic.ledger._rotation import KEY_RECORD, SiteKeys
from aseptic.ledger._store import LogStore, open_store
from aseptic.ledger._tree import Hash

__all__ = ["LogReader", "Record"]

_BATCH = 10_000  # leaves per read when streaming payloads


@dataclass(frozen=True)
class Record:
    """One leaf: its index, its kind and the exact payload bytes that hash to it."""

    leaf: int
    kind: LeafKind
    payload: bytes


class LogReader:
    """A read-only view of the ledger of a data directory (``D/ledger.db`` or its PostgreSQL store).
    Open with ``LogReader.open``; close when done."""

    def __init__(self, store: LogStore, nodes: NodeCache | None) -> None:
        self._store = store
        self._nodes = nodes
        self.size = store.leaf_count()
        self._subtree_root = subtree_root_with(nodes, store.iter_leaf_hashes)

    @classmethod
    def open(cls, data_dir: Path, *, node_cache: bool = False) -> LogReader:
        """Open the store of ``data_dir`` read-only; with ``node_cache``, bring ``state.db``'s node
        cache up to date first (it is written, so only on the site's own machine). The cache is kept
        in the data directory whichever store holds the rows: a directory has one store for life.

        Raises:
            ConfigError: no ledger there.
            InputError, IntegrityError, BackendError: not a ledger, a corrupt file, the store failed.
        """
        store = open_store(data_dir, read_only=True)
        nodes = None
        try:
            if node_cache:
                nodes = NodeCache.open(data_dir / "state.db")
                nodes.sync(store.leaf_count(), store.iter_leaf_hashes)
            return cls(store, nodes)
        except BaseException:
            if nodes is not None:
                nodes.close()
            store.close()
            raise

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
        """Every record with ``start <= leaf < end``, in log order."""
        out = [
            Record(leaf, kind, payload)
            for kind in TABLE_OF_KIND
            for leaf, payload in self._store.payloads(kind, start, end)
        ]
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
        """``(leaf, payload)`` of every record of ``kind`` from ``start`` on, in log order (read in
        batches of leaves, so a long log is never held in memory at once)."""
        while start < self.size:
            end = min(start + _BATCH, self.size)
            yield from self._store.payloads(kind, start, end)
            start = end
        yield from self._store.payloads(kind, start, 1 << 62)  # anything appended since open

    def key_leaves(self, before: int) -> list[Record]:
        """Every collector key record logged before leaf ``before``."""
        return [
            Record(leaf, LeafKind.KEY, p) for leaf, p in self.iter_payloads(LeafKind.KEY) if leaf < before
        ]

    def checkpoints(self) -> list[Checkpoint]:
        return self._store.checkpoints()

    def leaf_of(self, kind: LeafKind, payload: bytes) -> int | None:
        """The first leaf of ``kind`` whose payload is exactly ``payload``, or None."""
        for leaf, found in self._store.entries_containing(kind, payload):
            if found == payload:
                return leaf
        return None

    def rotation_entries(self) -> list[tuple[int, bytes]]:
        """``(leaf, payload)`` of every site-key rotation entry, in log order."""
        needle = f'"record":"{KEY_RECORD}"'.encode()
        return [
            (leaf, payload)
            for leaf, payload in self._store.entries_containing(LeafKind.AUDIT, needle)
            if json.loads(payload).get("key_event") == "retired"
        ]

    def site_keys(self, anchor: PublicKey) -> SiteKeys:
        """The site key chain from the key-rotation entries of the log, starting at ``anchor``.

        Raises:
            SignatureError: a rotation entry is not signed by both keys, or ``anchor`` is not in
                the chain.
        """
        needle = f'"record":"{KEY_RECORD}"'.encode()
        return SiteKeys.from_entries(anchor, self._store.entries_containing(LeafKind.AUDIT, needle))

    def inclusion_proof(self, index: int, size: int) -> tuple[Hash, ...]:
        if size > self.size:
            raise InputError(f"no tree of {size} leaves in a log of {self.size}")
        return inclusion_proof(index, size, self._subtree_root)

    def consistency_proof(self, size1: int, size2: int) -> tuple[Hash, ...]:
        if size2 > self.size:
            raise InputError(f"no tree of {size2} leaves in a log of {self.size}")
        return consistency_proof(size1, size2, self._subtree_root)

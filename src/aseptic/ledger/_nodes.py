"""A cache of interior nodes for fast proofs: every perfect subtree of ``2**TILE_LEVEL`` leaves or more.

Table ``ledger_nodes(level, idx, hash)`` of ``state.db`` (non-evidence) holds the root of the
aligned subtree ``[idx * 2**level, (idx + 1) * 2**level)`` for every ``level >= TILE_LEVEL`` whose
leaves are all stored. A proof then needs one lookup per level above the tile and one read of at
most ``2**TILE_LEVEL`` leaf hashes, instead of reading O(n) leaf hashes. The cache is never trusted:
every proof made with it is checked against a signed root before it is handed out (``_reader``), so
a damaged cache can only make a proof fail, never make a false one pass.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from aseptic.ledger._sqlite import sqlite_errors
from aseptic.ledger._tree import Hash, hash_children, root_of, split_point

__all__ = ["TILE_LEVEL", "NodeCache", "subtree_root_with"]

TILE_LEVEL = 6  # 64 leaves: a proof reads at most 64 leaf hashes; the cache holds ~n/32 nodes
_TILE = 1 << TILE_LEVEL

LeafHashes = Callable[[int, int], Iterator[Hash]]


class NodeCache:
    """Perfect subtree roots of ``TILE_LEVEL`` and above, in table ``ledger_nodes`` of ``state.db``."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path

    @classmethod
    def open(cls, path: Path) -> NodeCache:
        """Open (creating) the cache in ``path``."""
        with sqlite_errors(str(path)):
            conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ledger_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL,"
                " hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID"
            )
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def tiles(self) -> int:
        """How many complete tiles (``TILE_LEVEL`` nodes) are cached."""
        with sqlite_errors(str(self._path)):
            row = self._conn.execute(
                "SELECT coalesce(max(idx) + 1, 0) FROM ledger_nodes WHERE level = ?", (TILE_LEVEL,)
            ).fetchone()
        return int(row[0])

    def get(self, level: int, index: int) -> Hash | None:
        with sqlite_errors(str(self._path)):
            row = self._conn.execute(
                "SELECT hash FROM ledger_nodes WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        return None if row is None else Hash(row[0])

    def clear(self) -> None:
        with sqlite_errors(str(self._path)):
            self._conn.execute("DELETE FROM ledger_nodes")

    def sync(self, size: int, leaf_hashes: LeafHashes) -> int:
        """Add the nodes of every complete tile of the first ``size`` leaves; return how many tiles
        were added. Reads only the leaves after the last cached tile."""
        have, want = self.tiles(), size >> TILE_LEVEL
        if want <= have:
            return 0
        pending: dict[int, Hash] = {}  # level -> left sibling waiting for its right half
        for offset in range(have.bit_length()):
            index = have >> offset
            if index & 1:
                left = self.get(TILE_LEVEL + offset, index - 1)
                if left is None:  # a damaged cache: start again from scratch
                    self.clear()
                    return self.sync(size, leaf_hashes)
                pending[TILE_LEVEL + offset] = left
        rows: list[tuple[int, int, bytes]] = []
        buffer: list[Hash] = []
        tile = have
        with sqlite_errors(str(self._path)):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for leaf_hash in leaf_hashes(have << TILE_LEVEL, want << TILE_LEVEL):
                    buffer.append(leaf_hash)
                    if len(buffer) < _TILE:
                        continue
                    node, level, index = root_of(buffer), TILE_LEVEL, tile
                    buffer = []
                    rows.append((level, index, node))
                    while index & 1:
                        node = hash_children(pending.pop(level), node)
                        level, index = level + 1, index >> 1
                        rows.append((level, index, node))
                    pending[level] = node
                    tile += 1
                    if len(rows) >= 100_000:
                        self._conn.executemany("INSERT OR REPLACE INTO ledger_nodes VALUES (?, ?, ?)", rows)
                        rows = []
                self._conn.executemany("INSERT OR REPLACE INTO ledger_nodes VALUES (?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return tile - have


def subtree_root_with(cache: NodeCache | None, leaf_hashes: LeafHashes) -> Callable[[int, int], Hash]:
    """A ``subtree_root(start, end)`` that uses ``cache`` for perfect subtrees of a tile or more, and
    below that the levels of one tile, built from its leaf hashes once (the last tile is kept)."""
    if cache is None:
        return lambda start, end: root_of(list(leaf_hashes(start, end)))
    return _CachedTree(cache, leaf_hashes).subtree_root


class _CachedTree:
    def __init__(self, cache: NodeCache, leaf_hashes: LeafHashes) -> None:
        self._cache = cache
        self._leaf_hashes = leaf_hashes
        self._synced = cache.tiles() << TILE_LEVEL
        self._tile = -1
        self._levels: list[list[Hash]] = []  # levels[l][i]: the node of 2**l leaves at i in the tile
        # Subtrees that are not perfect lie on the right edge of a tree: few, and asked for by every
        # proof in that tree, so they are remembered.
        self._edge: dict[tuple[int, int], Hash] = {}

    def _tile_levels(self, tile: int) -> list[list[Hash]]:
        if tile != self._tile:
            level = list(self._leaf_hashes(tile << TILE_LEVEL, (tile + 1) << TILE_LEVEL))
            levels = [level]
            while len(level) > 1:
                level = [hash_children(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
                levels.append(level)
            self._tile, self._levels = tile, levels
        return self._levels

    def subtree_root(self, start: int, end: int) -> Hash:
        count = end - start
        aligned = count & (count - 1) == 0 and start % count == 0
        if aligned and count <= _TILE and end <= self._synced:
            tile, level = start >> TILE_LEVEL, count.bit_length() - 1
            return self._tile_levels(tile)[level][(start - (tile << TILE_LEVEL)) >> level]
        if aligned and count > _TILE and end <= self._synced:
            node = self._cache.get(count.bit_length() - 1, start // count)
            if node is not None:
                return node
        known = self._edge.get((start, end))
        if known is not None:
            return known
        if count <= _TILE:
            node = root_of(list(self._leaf_hashes(start, end)))
        else:
            k = split_point(count)
            node = hash_children(self.subtree_root(start, start + k), self.subtree_root(start + k, end))
        if not aligned and len(self._edge) < 4096:
            self._edge[(start, end)] = node
        return node

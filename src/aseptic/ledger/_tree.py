"""RFC 9162 Merkle tree hashing: leaf and node hashes, the tree head of n leaves, a compact frontier.

Pure functions on bytes. The hash of a leaf is ``SHA-256(0x00 || data)`` and the hash of an interior
node is ``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1), so a leaf can never be passed off as
a node. The tree of ``n`` leaves splits at ``k``, the largest power of two smaller than ``n``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import NewType

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "Hash",
    "hash_children",
    "hash_leaf",
    "root_of",
    "split_point",
]

Hash = NewType("Hash", bytes)

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256

EMPTY_ROOT = Hash(_sha256(b"").digest())


def hash_leaf(data: bytes) -> Hash:
    """The RFC 9162 leaf hash: ``SHA-256(0x00 || data)``."""
    return Hash(_sha256(_LEAF_PREFIX + data).digest())


def hash_children(left: bytes, right: bytes) -> Hash:
    """The RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return Hash(_sha256(_NODE_PREFIX + left + right).digest())


def split_point(n: int) -> int:
    """``k``: the largest power of two strictly smaller than ``n`` (``n`` >= 2)."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves does not split")
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> Hash:
    """The Merkle tree head (MTH) over already-hashed leaves; ``EMPTY_ROOT`` for none.

    Built bottom-up with a frontier so that the cost is one hash per node and no recursion.
    """
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.append(Hash(leaf))
    return frontier.root


class Frontier:
    """The compact range ``[0, size)``: one perfect-subtree hash per set bit of ``size``.

    ``nodes[0]`` covers the leftmost (largest) subtree. Appending a leaf merges equal-sized
    subtrees, so an append costs one hash amortised and the state is O(log n) hashes.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(nodes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} nodes, got {len(nodes)}")
        if any(len(node) != HASH_SIZE for node in nodes):
            raise ValueError("frontier nodes are 32-byte hashes")
        self._size = size
        self._nodes = [Hash(node) for node in nodes]

    @property
    def size(self) -> int:
        return self._size

    @property
    def nodes(self) -> tuple[Hash, ...]:
        return tuple(self._nodes)

    def copy(self) -> Frontier:
        return Frontier(self._size, self._nodes)

    def append(self, leaf_hash: Hash) -> None:
        """Add one already-hashed leaf at index ``size``."""
        node = leaf_hash
        nodes = self._nodes
        size = self._size
        while size & 1:
            node = hash_children(nodes.pop(), node)
            size >>= 1
        nodes.append(node)
        self._size += 1

    @property
    def root(self) -> Hash:
        """The tree head of the ``size`` leaves appended so far."""
        if not self._nodes:
            return EMPTY_ROOT
        root = self._nodes[-1]
        for node in reversed(self._nodes[:-1]):
            root = hash_children(node, root)
        return root

    def ranges(self) -> list[tuple[int, int]]:
        """The leaf range ``[start, end)`` that each of ``nodes`` covers, left to right."""
        out: list[tuple[int, int]] = []
        start = 0
        for bit in reversed(range(self._size.bit_length())):
            width = 1 << bit
            if self._size & width:
                out.append((start, start + width))
                start += width
        return out

    def subtree_lookup(self) -> Callable[[int, int], Hash]:
        """A ``subtree_root(start, end)`` that answers only for this frontier's own nodes."""
        known = dict(zip(self.ranges(), self._nodes, strict=True))

        def subtree_root(start: int, end: int) -> Hash:
            try:
                return known[(start, end)]
            except KeyError:
                raise ValueError(f"subtree [{start}, {end}) is not a node of frontier {self._size}") from None

        return subtree_root

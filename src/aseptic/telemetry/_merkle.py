"""RFC 9162 Merkle hashing for the readings of one envelope: root, audit paths, path verification.

A leaf is ``SHA-256(0x00 || leaf bytes)`` and an interior node ``SHA-256(0x01 || left || right)``
(RFC 9162 §2.1.1), so a leaf can never pass for a node. The tree of ``n`` leaves splits at the largest
power of two smaller than ``n``; building it level by level and carrying an unpaired last node up
unchanged gives exactly that tree, with one hash per node and no recursion.

Telemetry keeps its own copy of these few lines rather than importing ``aseptic.ledger``: the ledger
stores envelopes, so it depends on telemetry and not the other way round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aseptic.errors import ProofError

_sha256 = hashlib.sha256
_NODE = b"\x01"


def hash_leaf(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    sha = _sha256
    node = _NODE
    upper = [sha(node + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
    if len(level) & 1:
        upper.append(level[-1])
    return upper


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The tree head over already-hashed ``leaves`` (at least one)."""
    if not leaves:
        raise ValueError("a Merkle tree over readings needs at least one leaf")
    level: Sequence[bytes] = leaves
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def audit_path(leaves: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """RFC 9162 ``PATH(index, D[n])``: the sibling hashes from leaf ``index`` up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is outside a tree of {len(leaves)} leaves")
    path: list[bytes] = []
    level: Sequence[bytes] = leaves
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level = _next_level(level)
        index >>= 1
    return tuple(path)


def root_from_path(leaf_hash: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root implied by ``leaf_hash`` at ``index`` in a tree of ``size`` leaves (RFC 9162 §2.1.3.2).

    Raises:
        ProofError: the index is outside the tree, or the path is too short or too long for it.
    """
    if not 0 <= index < size:
        raise ProofError(f"reading index {index} is outside an envelope of {size} readings")
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if len(p) != 32:
            raise ProofError(f"audit path holds a {len(p)}-byte hash; SHA-256 hashes are 32 bytes")
        if sn == 0:
            raise ProofError(f"audit path for reading {index} of {size} is too long ({len(path)} hashes)")
        if fn & 1 or fn == sn:
            r = _sha256(_NODE + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"audit path for reading {index} of {size} is too short ({len(path)} hashes)")
    return r

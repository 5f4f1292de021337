"""RFC 9162 inclusion and consistency proofs: which subtrees a proof holds, and their verification.

Generation is split in two so that the core stays pure: ``inclusion_ranges`` / ``consistency_ranges``
name the leaf ranges ``[start, end)`` whose subtree hashes form the proof (RFC 9162 §2.1.3.1 PATH
and §2.1.4.1 SUBPROOF), and a store supplies those hashes through a ``subtree_root`` callable.
Verification follows §2.1.3.2 and §2.1.4.2 step by step and raises ``ProofError`` showing the
expected and the computed root.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aseptic.errors import InputError, ProofError
from aseptic.ledger._tree import EMPTY_ROOT, HASH_SIZE, Hash, hash_children, root_of, split_point

__all__ = [
    "SubtreeRoot",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "subtree_roots_of",
    "verify_consistency",
    "verify_inclusion",
]

SubtreeRoot = Callable[[int, int], Hash]


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees of an inclusion proof of leaf ``index`` in a tree of ``size``, leaf side first."""
    if not 0 <= index < size:
        raise InputError(f"leaf {index} is not in a tree of {size} leaves")
    out: list[tuple[int, int]] = []
    start, count, m = 0, size, index
    stack: list[tuple[int, int]] = []
    while count > 1:
        k = split_point(count)
        if m < k:
            stack.append((start + k, start + count))
            count = k
        else:
            stack.append((start, start + k))
            start, count, m = start + k, count - k, m - k
    out.extend(reversed(stack))
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The subtrees of a consistency proof from ``size1`` to ``size2`` leaves (RFC 9162 SUBPROOF)."""
    if not 0 <= size1 <= size2:
        raise InputError(f"no consistency proof from {size1} to {size2} leaves (sizes must not decrease)")
    if size1 in (0, size2):
        return []
    stack: list[tuple[int, int]] = []
    start, count, m, whole = 0, size2, size1, True
    while m != count:
        k = split_point(count)
        if m <= k:
            stack.append((start + k, start + count))
            count = k
        else:
            stack.append((start, start + k))
            start, count, m, whole = start + k, count - k, m - k, False
    if not whole:
        stack.append((start, start + count))
    return list(reversed(stack))


def inclusion_proof(index: int, size: int, subtree_root: SubtreeRoot) -> tuple[Hash, ...]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves."""
    return tuple(subtree_root(start, end) for start, end in inclusion_ranges(index, size))


def consistency_proof(size1: int, size2: int, subtree_root: SubtreeRoot) -> tuple[Hash, ...]:
    """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2`` leaves."""
    return tuple(subtree_root(start, end) for start, end in consistency_ranges(size1, size2))


def subtree_roots_of(leaf_hashes: Sequence[bytes]) -> SubtreeRoot:
    """A ``subtree_root`` over leaf hashes held in memory (tests, small trees)."""

    def subtree_root(start: int, end: int) -> Hash:
        return root_of(leaf_hashes[start:end])

    return subtree_root


def _check_hashes(proof: Sequence[bytes], what: str) -> None:
    for position, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise ProofError(f"{what}: proof element {position} is {len(node)} bytes, not {HASH_SIZE}")


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with head ``root``.

    Raises:
        ProofError: the proof does not lead to ``root``; the message shows both roots.
    """
    what = f"inclusion of leaf {index} in tree of {size}"
    if not 0 <= index < size:
        raise ProofError(f"{what}: leaf index out of range")
    _check_hashes(proof, what)
    fn, sn = index, size - 1
    computed = bytes(leaf_hash)
    for node in proof:
        if sn == 0:
            raise ProofError(f"{what}: proof has {len(proof)} elements, too many for this tree")
        if fn & 1 or fn == sn:
            computed = hash_children(node, computed)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            computed = hash_children(computed, node)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"{what}: proof has {len(proof)} elements, too few for this tree")
    if computed != root:
        raise ProofError(f"{what}: expected root {bytes(root).hex()}, computed {computed.hex()}")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size1`` leaves (head ``root1``) is a prefix of ``size2`` (``root2``).

    Raises:
        ProofError: the proof does not reproduce both roots; the message shows expected and computed.
    """
    what = f"consistency of tree {size1} with tree {size2}"
    if not 0 <= size1 <= size2:
        raise ProofError(f"{what}: a tree cannot shrink")
    _check_hashes(proof, what)
    if size1 == 0 or size1 == size2:
        if proof:
            raise ProofError(f"{what}: expected an empty proof, got {len(proof)} elements")
        expected = EMPTY_ROOT if size1 == 0 else root2
        if root1 != expected:
            raise ProofError(f"{what}: expected root {bytes(expected).hex()}, computed {bytes(root1).hex()}")
        return
    if not proof:
        raise ProofError(f"{what}: the proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = bytes(path[0])
    for node in path[1:]:
        if sn == 0:
            raise ProofError(f"{what}: proof has {len(proof)} elements, too many for these sizes")
        if fn & 1 or fn == sn:
            fr = hash_children(node, fr)
            sr = hash_children(node, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, node)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"{what}: proof has {len(proof)} elements, too few for these sizes")
    if fr != root1:
        raise ProofError(f"{what}: expected old root {bytes(root1).hex()}, computed {fr.hex()}")
    if sr != root2:
        raise ProofError(f"{what}: expected new root {bytes(root2).hex()}, computed {sr.hex()}")

"""RFC 9162 hashing and proofs: known answers, every tree size, and tampered proofs that must fail."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aseptic.errors import InputError, ProofError
from aseptic.ledger._proof import (
    consistency_proof,
    inclusion_proof,
    subtree_roots_of,
    verify_consistency,
    verify_inclusion,
)
from aseptic.ledger._tree import EMPTY_ROOT, Frontier, Hash, hash_children, hash_leaf, root_of

pytestmark = pytest.mark.requirement("ASE-CUSTODY")

# The Certificate Transparency reference inputs and the published tree heads for sizes 0..8.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_CONSISTENCY = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
MAX_SIZE = 40


def reference_root(data: list[bytes]) -> bytes:
    """MTH straight from the RFC's recursive definition, independent of the code under test."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(data[:k]) + reference_root(data[k:])).digest()


def leaves_for(n: int) -> list[Hash]:
    return [hash_leaf(i.to_bytes(4, "big")) for i in range(n)]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert root_of([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_ct_reference_roots(size: int) -> None:
    data = CT_LEAVES[:size]
    assert root_of([hash_leaf(d) for d in data]).hex() == CT_ROOTS[size]
    assert reference_root(data).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_ct_reference_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    leaves = [hash_leaf(d) for d in CT_LEAVES[:size]]
    proof = inclusion_proof(index, size, subtree_roots_of(leaves))
    assert [p.hex() for p in proof] == path
    verify_inclusion(leaves[index], index, size, proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("size1", "size2", "path"), CT_CONSISTENCY)
def test_ct_reference_consistency_proofs(size1: int, size2: int, path: list[str]) -> None:
    leaves = [hash_leaf(d) for d in CT_LEAVES[:size2]]
    proof = consistency_proof(size1, size2, subtree_roots_of(leaves))
    assert [p.hex() for p in proof] == path
    verify_consistency(size1, size2, proof, bytes.fromhex(CT_ROOTS[size1]), bytes.fromhex(CT_ROOTS[size2]))


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    left, right = hash_leaf(b"a"), hash_leaf(b"b")
    assert hash_children(left, right) != hash_leaf(left + right)


def test_frontier_root_matches_recursive_definition_at_every_size() -> None:
    data = [bytes([i, i ^ 0x5A]) for i in range(MAX_SIZE)]
    frontier = Frontier()
    for n in range(MAX_SIZE + 1):
        assert frontier.size == n
        assert len(frontier.nodes) == n.bit_count()
        assert frontier.root == reference_root(data[:n])
        if n < MAX_SIZE:
            frontier.append(hash_leaf(data[n]))


def test_frontier_restored_from_its_nodes_keeps_appending() -> None:
    leaves = leaves_for(13)
    first = Frontier()
    for leaf in leaves[:9]:
        first.append(leaf)
    restored = Frontier(first.size, first.nodes)
    for leaf in leaves[9:]:
        restored.append(leaf)
    assert restored.root == root_of(leaves)


def test_frontier_with_wrong_node_count_is_refused() -> None:
    with pytest.raises(ValueError, match="has 2 nodes"):
        Frontier(3, [EMPTY_ROOT])


@given(st.integers(1, MAX_SIZE), st.data())
def test_every_inclusion_proof_verifies(size: int, data: st.DataObject) -> None:
    leaves = leaves_for(size)
    root = root_of(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, subtree_roots_of(leaves))
    verify_inclusion(leaves[index], index, size, proof, root)


def test_inclusion_proofs_for_every_index_of_every_size() -> None:
    for size in range(1, MAX_SIZE + 1):
        leaves = leaves_for(size)
        root = root_of(leaves)
        for index in range(size):
            verify_inclusion(
                leaves[index], index, size, inclusion_proof(index, size, subtree_roots_of(leaves)), root
            )


def test_consistency_proofs_for_every_pair_of_sizes() -> None:
    leaves = leaves_for(MAX_SIZE)
    roots = [root_of(leaves[:n]) for n in range(MAX_SIZE + 1)]
    subtree_root = subtree_roots_of(leaves)
    for size2 in range(MAX_SIZE + 1):
        for size1 in range(size2 + 1):
            proof = consistency_proof(size1, size2, subtree_root)
            verify_consistency(size1, size2, proof, roots[size1], roots[size2])


@given(st.integers(2, MAX_SIZE), st.data())
def test_inclusion_proof_with_flipped_bit_fails(size: int, data: st.DataObject) -> None:
    leaves = leaves_for(size)
    index = data.draw(st.integers(0, size - 1))
    proof = list(inclusion_proof(index, size, subtree_roots_of(leaves)))
    element = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    flipped = bytearray(proof[element])
    flipped[bit // 8] ^= 1 << (bit % 8)
    proof[element] = Hash(bytes(flipped))
    with pytest.raises(ProofError, match="expected root"):
        verify_inclusion(leaves[index], index, size, proof, root_of(leaves))


@given(st.integers(2, MAX_SIZE), st.data())
def test_inclusion_proof_for_wrong_index_fails(size: int, data: st.DataObject) -> None:
    leaves = leaves_for(size)
    index = data.draw(st.integers(0, size - 1))
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    proof = inclusion_proof(index, size, subtree_roots_of(leaves))
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], other, size, proof, root_of(leaves))


@given(st.integers(2, MAX_SIZE), st.data())
def test_inclusion_proof_for_wrong_size_fails(size: int, data: st.DataObject) -> None:
    leaves = leaves_for(MAX_SIZE)
    index = data.draw(st.integers(0, size - 1))
    other = data.draw(st.integers(index + 1, MAX_SIZE).filter(lambda n: n != size))
    proof = inclusion_proof(index, size, subtree_roots_of(leaves))
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, other, proof, root_of(leaves[:other]))


@given(st.integers(2, MAX_SIZE), st.data())
def test_truncated_or_extended_inclusion_proof_fails(size: int, data: st.DataObject) -> None:
    leaves = leaves_for(size)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, subtree_roots_of(leaves))
    with pytest.raises(ProofError, match="too few"):
        verify_inclusion(leaves[index], index, size, proof[:-1], root_of(leaves))
    with pytest.raises(ProofError, match="too many"):
        verify_inclusion(leaves[index], index, size, (*proof, EMPTY_ROOT), root_of(leaves))


def test_inclusion_of_a_different_leaf_fails() -> None:
    leaves = leaves_for(8)
    proof = inclusion_proof(3, 8, subtree_roots_of(leaves))
    with pytest.raises(ProofError, match=f"expected root {root_of(leaves).hex()}, computed"):
        verify_inclusion(hash_leaf(b"forged"), 3, 8, proof, root_of(leaves))


def test_inclusion_index_outside_the_tree_fails() -> None:
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(EMPTY_ROOT, 8, 8, [], EMPTY_ROOT)
    with pytest.raises(InputError, match="not in a tree of 8"):
        inclusion_proof(8, 8, subtree_roots_of(leaves_for(8)))


def test_proof_element_of_wrong_length_fails() -> None:
    leaves = leaves_for(4)
    proof = list(inclusion_proof(1, 4, subtree_roots_of(leaves)))
    proof[0] = Hash(proof[0][:31])
    with pytest.raises(ProofError, match="31 bytes"):
        verify_inclusion(leaves[1], 1, 4, proof, root_of(leaves))


@given(st.integers(2, MAX_SIZE), st.data())
def test_consistency_proof_with_flipped_bit_fails(size2: int, data: st.DataObject) -> None:
    leaves = leaves_for(size2)
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = list(consistency_proof(size1, size2, subtree_roots_of(leaves)))
    element = data.draw(st.integers(0, len(proof) - 1))
    flipped = bytearray(proof[element])
    flipped[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
    proof[element] = Hash(bytes(flipped))
    with pytest.raises(ProofError, match="expected (old|new) root"):
        verify_consistency(size1, size2, proof, root_of(leaves[:size1]), root_of(leaves))


@given(st.integers(2, MAX_SIZE), st.data())
def test_consistency_with_a_rewritten_history_fails(size2: int, data: st.DataObject) -> None:
    leaves = leaves_for(size2)
    size1 = data.draw(st.integers(1, size2 - 1))
    rewritten = list(leaves)
    rewritten[data.draw(st.integers(0, size1 - 1))] = hash_leaf(b"rewritten")
    proof = consistency_proof(size1, size2, subtree_roots_of(rewritten))
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root_of(leaves[:size1]), root_of(rewritten))


@given(st.integers(3, MAX_SIZE), st.data())
def test_consistency_proof_for_wrong_sizes_fails(size2: int, data: st.DataObject) -> None:
    leaves = leaves_for(MAX_SIZE)
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = consistency_proof(size1, size2, subtree_roots_of(leaves))
    root1, root2 = root_of(leaves[:size1]), root_of(leaves[:size2])
    wrong1 = data.draw(st.integers(1, size2 - 1).filter(lambda n: n != size1))
    wrong2 = data.draw(st.integers(size1 + 1, MAX_SIZE).filter(lambda n: n != size2))
    # The attacker claims other sizes; the verifier holds the true roots of the sizes claimed.
    with pytest.raises(ProofError):
        verify_consistency(wrong1, size2, proof, root_of(leaves[:wrong1]), root2)
    with pytest.raises(ProofError):
        verify_consistency(size1, wrong2, proof, root1, root_of(leaves[:wrong2]))


@given(st.integers(2, MAX_SIZE), st.data())
def test_truncated_or_extended_consistency_proof_fails(size2: int, data: st.DataObject) -> None:
    leaves = leaves_for(size2)
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = consistency_proof(size1, size2, subtree_roots_of(leaves))
    root1, root2 = root_of(leaves[:size1]), root_of(leaves)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof[:-1], root1, root2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, (*proof, EMPTY_ROOT), root1, root2)


def test_a_tree_cannot_shrink() -> None:
    with pytest.raises(ProofError, match="cannot shrink"):
        verify_consistency(5, 4, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(InputError, match="must not decrease"):
        consistency_proof(5, 4, subtree_roots_of(leaves_for(5)))


def test_equal_sizes_need_equal_roots_and_an_empty_proof() -> None:
    root = root_of(leaves_for(5))
    verify_consistency(5, 5, [], root, root)
    with pytest.raises(ProofError, match="expected root"):
        verify_consistency(5, 5, [], root, EMPTY_ROOT)
    with pytest.raises(ProofError, match="empty proof"):
        verify_consistency(5, 5, [root], root, root)
    with pytest.raises(ProofError, match="expected root"):
        verify_consistency(0, 5, [], root, root)


def test_frontier_lookup_serves_consistency_from_a_checkpoint() -> None:
    leaves = leaves_for(29)
    old = Frontier()
    for leaf in leaves[:11]:
        old.append(leaf)
    known = old.subtree_lookup()

    def subtree_root(start: int, end: int) -> Hash:
        return known(start, end) if end <= 11 else root_of(leaves[start:end])

    proof = consistency_proof(11, 29, subtree_root)
    verify_consistency(11, 29, proof, old.root, root_of(leaves))

"""The interior-node cache behind export proofs gives exactly the RFC 9162 proofs, at every size
around tile boundaries, after incremental growth, and never hides a damaged cache. The cache lives in
``state.db`` of the data directory whichever store holds the rows, so these run on both stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from ledger_support import Site

from aseptic.errors import ProofError
from aseptic.ledger import LogReader, root_of, verify_inclusion
from aseptic.ledger._nodes import TILE_LEVEL
from aseptic.ledger._proof import consistency_proof, inclusion_proof, subtree_roots_of

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "A11-17")

TILE = 1 << TILE_LEVEL


def grow(site: Site, count: int) -> list[bytes]:
    with site.open() as ledger:
        ledger.append_findings({"n": i} for i in range(count))
        return [ledger.leaf_hash(i) for i in range(ledger.size)]


@pytest.mark.parametrize("size", [1, TILE - 1, TILE, TILE + 1, 3 * TILE + 5, 4 * TILE])
def test_cached_proofs_equal_the_reference_proofs(site: Site, size: int) -> None:
    hashes = grow(site, size)
    reference = subtree_roots_of(hashes)
    with LogReader.open(site.data_dir, node_cache=True) as reader:
        for index in {0, size // 2, size - 1, min(size - 1, TILE)}:
            assert reader.inclusion_proof(index, size) == inclusion_proof(index, size, reference)
        for old in {1, size // 3 or 1, size}:
            assert reader.consistency_proof(old, size) == consistency_proof(old, size, reference)


def test_the_cache_grows_with_the_log(site: Site) -> None:
    grow(site, 2 * TILE + 3)
    with LogReader.open(site.data_dir, node_cache=True):
        pass
    hashes = grow(site, 3 * TILE)
    size = len(hashes)
    with LogReader.open(site.data_dir, node_cache=True) as reader:
        index = size - TILE - 7
        proof = reader.inclusion_proof(index, size)
        verify_inclusion(hashes[index], index, size, proof, root_of(hashes))


def test_a_damaged_cache_yields_proofs_that_fail_never_pass(site: Site) -> None:
    hashes = grow(site, 4 * TILE)
    with LogReader.open(site.data_dir, node_cache=True):
        pass
    conn = sqlite3.connect(Path(site.data_dir) / "state.db")
    with conn:
        conn.execute("UPDATE ledger_nodes SET hash = zeroblob(32)")
    conn.close()
    with LogReader.open(site.data_dir, node_cache=True) as reader:
        proof = reader.inclusion_proof(0, len(hashes))
    with pytest.raises(ProofError):
        verify_inclusion(hashes[0], 0, len(hashes), proof, root_of(hashes))

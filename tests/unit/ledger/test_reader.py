"""``LogReader`` reads the same records, payload streams, signature leaves and site key chain from
either store (every test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import pytest
from ledger_support import Site

from aseptic.ledger import LeafKind, LogReader, hash_entry
from aseptic.ledger import _reader as reader_module

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "P11-11.10c")

KINDS = [LeafKind.KEY, *[LeafKind.ENVELOPE] * 3, LeafKind.FINDING, LeafKind.QUARANTINE, LeafKind.ENVELOPE]


def test_records_are_the_exact_bytes_of_every_leaf_in_log_order(built: Site) -> None:
    with LogReader.open(built.data_dir) as reader:
        records = reader.records(0, reader.size)
        assert [record.kind for record in records] == KINDS
        assert [record.leaf for record in records] == list(range(7))
        for record in records:
            assert hash_entry(record.kind, record.payload) == reader.leaf_hash(record.leaf)
        assert reader.records(2, 4) == records[2:4]
        assert reader.record(4).kind is LeafKind.FINDING


def test_payload_streams_cross_batch_boundaries(built: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    with LogReader.open(built.data_dir) as reader:
        whole = list(reader.iter_payloads(LeafKind.ENVELOPE))
        assert [leaf for leaf, _ in whole] == [1, 2, 3, 6]
        monkeypatch.setattr(reader_module, "_BATCH", 2)
        assert list(reader.iter_payloads(LeafKind.ENVELOPE)) == whole
        assert [leaf for leaf, _ in reader.iter_payloads(LeafKind.ENVELOPE, 3)] == [3, 6]
        assert [record.leaf for record in reader.key_leaves(before=7)] == [0]


def test_leaf_of_finds_only_the_exact_payload(built: Site) -> None:
    with LogReader.open(built.data_dir) as reader:
        finding = reader.record(4).payload
        assert reader.leaf_of(LeafKind.FINDING, finding) == 4
        assert reader.leaf_of(LeafKind.FINDING, finding[:-1]) is None  # contained, not equal
        assert reader.leaf_of(LeafKind.AUDIT, finding) is None


def test_site_keys_without_rotation_is_the_anchor_alone(built: Site) -> None:
    with LogReader.open(built.data_dir) as reader:
        chain = reader.site_keys(built.site_key.public)
    assert chain.current == built.site_key.public and chain.keys == (built.site_key.public,)

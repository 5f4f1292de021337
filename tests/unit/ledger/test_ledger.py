"""The Ledger: appends, roots, proofs, restarts, the historian, and refusing to build on a bad log."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import timedelta

import pytest
from ledger_support import SOURCE, START, Site, make_envelopes, quarantine_event

from aseptic.crypto import SigningKey
from aseptic.errors import BackendError, ConfigError, InputError, IntegrityError, RollbackError
from aseptic.ledger import (
    LeafKind,
    Ledger,
    hash_entry,
    root_of,
    verify_consistency,
    verify_inclusion,
    verify_ledger,
)
from aseptic.telemetry import Envelope, Quality, Reading

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "P11-11.10a")


def stored_leaf_hashes(site: Site) -> list[bytes]:
    with site.db() as conn:
        return [bytes(row[0]) for row in conn.execute("SELECT hash FROM leaves ORDER BY idx").fetchall()]


def test_empty_ledger_has_the_empty_root(site: Site) -> None:
    with site.open() as ledger:
        assert ledger.size == 0
        assert ledger.root == root_of([])
    assert (site.data_dir / "site.pub").read_text() == f"ed25519 {site.site_key.public.raw.hex()}\n"


def test_root_is_the_tree_of_the_entries_hashes(built: Site) -> None:
    envelopes = make_envelopes(built.collector_key, 4)
    expected = [
        hash_entry(
            LeafKind.KEY,
            json.dumps(
                {"algorithm": "ed25519", "name": SOURCE, "public_key": built.collector_key.public.raw.hex()},
                separators=(",", ":"),
                sort_keys=True,
            ).encode(),
        ),
        *(hash_entry(LeafKind.ENVELOPE, e.to_bytes()) for e in envelopes[:3]),
        hash_entry(LeafKind.FINDING, b'{"detector":"cusum","score":7.25,"tags":["ph"]}'),
        hash_entry(LeafKind.QUARANTINE, quarantine_event().to_bytes()),
        hash_entry(LeafKind.ENVELOPE, envelopes[3].to_bytes()),
    ]
    with built.open() as ledger:
        assert ledger.size == 7
        assert ledger.root == root_of(expected)
        assert [c.size for c in ledger.checkpoints()] == [6, 7]
    assert stored_leaf_hashes(built) == expected


def test_entry_kinds_are_domain_separated() -> None:
    assert hash_entry(LeafKind.FINDING, b"{}") != hash_entry(LeafKind.QUARANTINE, b"{}")


def test_inclusion_and_consistency_proofs_from_the_store_verify(built: Site) -> None:
    with built.open() as ledger:
        first, second = ledger.checkpoints()
        for index in range(ledger.size):
            proof = ledger.inclusion_proof(index)
            verify_inclusion(ledger.leaf_hash(index), index, ledger.size, proof, second.root)
        for index in range(first.size):
            verify_inclusion(
                ledger.leaf_hash(index), index, first.size, ledger.inclusion_proof(index, 6), first.root
            )
        proof = ledger.consistency_proof(first.size, second.size)
        verify_consistency(first.size, second.size, proof, first.root, second.root)
        assert ledger.root_at(6) == first.root


def test_restart_continues_the_same_tree(built: Site) -> None:
    with built.open() as ledger:
        root, size = ledger.root, ledger.size
    with built.open() as ledger:
        assert (ledger.size, ledger.root) == (size, root)
        extra = make_envelopes(built.collector_key, 1, first_sequence=5)[0]
        assert ledger.append_envelope(extra, extra.to_bytes()) == size
        assert ledger.root == root_of(stored_leaf_hashes(built))


def test_altered_frontier_cache_is_not_trusted(built: Site) -> None:
    with sqlite3.connect(built.data_dir / "state.db") as conn:
        conn.execute("UPDATE ledger_frontier SET nodes = zeroblob(length(nodes))")
    with built.open() as ledger:
        assert ledger.root == root_of(stored_leaf_hashes(built))


def test_damaged_frontier_cache_is_moved_aside_and_rebuilt(
    built: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # state.db is no evidence: a file SQLite cannot read (disk damage, a stray write) must not
    # keep the ledger from opening. Before, Ledger.open failed with an IntegrityError.
    state = built.data_dir / "state.db"
    for suffix in ("-wal", "-shm"):
        state.with_name(state.name + suffix).unlink(missing_ok=True)
    state.write_bytes(b"this is not a database file" * 200)
    with caplog.at_level("WARNING"), built.open() as ledger:
        assert ledger.root == root_of(stored_leaf_hashes(built))
        ledger.checkpoint()
    assert (built.data_dir / "state.db.damaged-1").read_bytes().startswith(b"this is not a database")
    assert "moved to" in caplog.text and "state.db.damaged-1" in caplog.text
    with built.open() as ledger:  # the new cache works
        assert ledger.root == root_of(stored_leaf_hashes(built))


def test_truncated_log_refuses_to_open(built: Site) -> None:
    with built.db() as conn:
        conn.execute("DELETE FROM readings WHERE leaf = 6")
        conn.execute("DELETE FROM envelopes WHERE leaf = 6")
        conn.execute("DELETE FROM leaves WHERE idx = 6")
    with pytest.raises(RollbackError, match="only 6 leaves are stored"):
        built.open()


def test_rewritten_leaf_hash_refuses_to_open_without_cache(built: Site) -> None:
    with built.db() as conn:
        conn.execute("UPDATE leaves SET hash = zeroblob(32) WHERE idx = 2")
    (built.data_dir / "state.db").unlink()
    with pytest.raises(IntegrityError, match="stored leaves give"):
        built.open()


def test_another_site_key_is_refused(built: Site) -> None:
    with pytest.raises(ConfigError, match="site.pub holds key"):
        Ledger.open(built.data_dir, site_key=SigningKey.generate(), clock=built.clock)


def test_another_origin_is_refused(built: Site) -> None:
    with pytest.raises(ConfigError, match="is for origin 'site-01'"):
        Ledger.open(built.data_dir, site_key=built.site_key, clock=built.clock, origin="site-02")


def test_open_without_create_needs_a_ledger(site: Site) -> None:
    with pytest.raises(ConfigError, match="no ledger"):
        Ledger.open(site.data_dir, site_key=site.site_key, clock=site.clock, create=False)


def test_failed_batch_leaves_nothing_behind(built: Site) -> None:
    envelopes = make_envelopes(built.collector_key, 2, first_sequence=5)
    with built.open() as ledger:
        size, root = ledger.size, ledger.root
        with pytest.raises(RuntimeError, match="crash"), ledger.batch():
            ledger.append_envelope(envelopes[0], envelopes[0].to_bytes())
            raise RuntimeError("crash in the middle of a batch")
        assert (ledger.size, ledger.root) == (size, root)
        assert ledger.append_envelope(envelopes[1], envelopes[1].to_bytes()) == size
    assert len(stored_leaf_hashes(built)) == size + 1


def test_second_writer_is_detected(built: Site) -> None:
    envelopes = make_envelopes(built.collector_key, 2, first_sequence=5)
    with built.open() as first, built.open() as second:
        first.append_envelope(envelopes[0], envelopes[0].to_bytes())
        with pytest.raises(BackendError, match="has 8 leaves, this writer expected 7"):
            second.append_envelope(envelopes[1], envelopes[1].to_bytes())


def test_checkpoint_inside_a_batch_is_refused(site: Site) -> None:
    with site.open() as ledger, ledger.batch(), pytest.raises(ConfigError, match="open batch"):
        ledger.checkpoint()


def test_backdated_checkpoint_is_refused(built: Site) -> None:
    built.clock._now -= timedelta(hours=1)  # a clock stepped back (SimClock refuses to)
    with built.open() as ledger, pytest.raises(RollbackError, match="before the latest checkpoint"):
        ledger.checkpoint()


def test_findings_are_stored_as_canonical_json(site: Site) -> None:
    with site.open() as ledger:
        index = ledger.append_finding({"z": 1, "a": "é", "n": [1.5, None]})
        assert ledger.append_finding(b'{"a":1}') == index + 1
        with pytest.raises(InputError, match="not canonical"):
            ledger.append_finding(b'{"a": 1}')
        with pytest.raises(InputError, match="cannot be encoded"):
            ledger.append_finding({"x": math.nan})
        with pytest.raises(InputError, match="JSON object"):
            ledger.append_finding(b"[1]")
    with site.db() as conn:
        assert bytes(conn.execute("SELECT payload FROM findings WHERE leaf = ?", (index,)).fetchone()[0]) == (
            '{"a":"é","n":[1.5,null],"z":1}'.encode()
        )


def test_historian_returns_readings_in_time_range_with_their_leaf(built: Site) -> None:
    with built.open() as ledger:
        rows = ledger.query_readings("ph", START, START + timedelta(days=1))
        assert [(r.leaf, r.position) for r in rows] == [(1, 1), (2, 1), (3, 1), (6, 1)]
        assert rows[0].reading == Reading(
            "ph", START + timedelta(seconds=61), 301.125, Quality.GOOD, f"{SOURCE}/AT-202"
        )
        window = ledger.query_readings("ph", START + timedelta(seconds=121), START + timedelta(seconds=181))
        assert [r.leaf for r in window] == [2]
        assert ledger.query_readings("assay_viscosity_cp", START, START + timedelta(days=1)) == ()


def test_historian_keeps_nan_of_a_bad_reading(site: Site) -> None:
    reading = Reading("ph", START, math.nan, Quality.BAD, "x")
    envelope = Envelope.seal(
        source=SOURCE, sequence=1, previous_digest=bytes(32), readings=[reading], key=site.collector_key
    )
    with site.open() as ledger:
        ledger.append_envelope(envelope, envelope.to_bytes())
        (row,) = ledger.query_readings("ph", START, START + timedelta(seconds=1))
    assert math.isnan(row.reading.value) and row.reading.quality is Quality.BAD


def test_historian_unknown_tag_lists_the_known_ones(built: Site) -> None:
    with built.open() as ledger, pytest.raises(InputError, match="unknown tag 'no_such_tag'") as info:
        ledger.query_readings("no_such_tag", START, START + timedelta(days=1))
    assert info.value.hint is not None and "temperature_k" in info.value.hint


def test_historian_refuses_a_reversed_range(built: Site) -> None:
    with built.open() as ledger, pytest.raises(InputError, match="before it starts"):
        ledger.query_readings("ph", START + timedelta(days=1), START)


def test_failed_append_inside_a_batch_leaves_no_half_entry(site: Site) -> None:
    (good,) = make_envelopes(site.collector_key, 1)
    with site.open() as ledger:
        with ledger.batch():
            with pytest.raises(BackendError):
                # The envelope row of leaf 0 is inserted, then its readings fail (a row with a NULL tag).
                broken = Envelope.from_bytes(good.to_bytes())
                table = broken._table  # the decoded columns the ledger writes its rows from
                no_text = table._replace(strings=tuple(None for _ in table.strings))
                object.__setattr__(broken, "_table", no_text)
                ledger.append_envelope(broken, good.to_bytes())
            assert ledger.append_envelope(good, good.to_bytes()) == 0
        assert ledger.size == 1
    with site.db() as conn:
        assert conn.execute("SELECT count(*) FROM envelopes").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 5


def test_restart_resumes_each_source_at_its_last_logged_envelope(built: Site) -> None:
    envelopes = make_envelopes(built.collector_key, 4)
    with built.open() as ledger:
        heads = ledger.chain_heads()
        keys = ledger.logged_keys()
    assert heads == {SOURCE: (4, bytes(envelopes[3].digest))}
    assert keys == {SOURCE: (built.collector_key.public,)}


def test_empty_ledger_has_no_heads_and_no_keys(site: Site) -> None:
    with site.open() as ledger:
        assert ledger.chain_heads() == {}
        assert ledger.logged_keys() == {}


def test_site_key_rotation_is_followed_on_reopen_and_by_verify(built: Site) -> None:
    """On either store: the rotation entry is found through the store, the old key is refused
    afterwards, and verify accepts both keys each within its span."""
    new_key = SigningKey.generate()
    fields = {"who": "user:admin", "when": "2026-01-01T00:02:00.000000Z", "why": "yearly rotation"}
    with built.open() as ledger:
        ledger.rotate_site_key(new_key, fields)
        built.clock.advance(60)
        ledger.append_finding({"after": "rotation"})
        ledger.checkpoint()
    with pytest.raises(ConfigError, match="holds key"):  # site.pub names the new key now
        built.open()
    with Ledger.open(built.data_dir, site_key=new_key, clock=built.clock) as ledger:
        assert ledger.size == 9
    assert verify_ledger(built.data_dir, built.site_key.public).size == 9

"""verify_ledger: a clean ledger verifies; any change to any row that matters is found and named."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ledger_support import SOURCE, Db, Site, make_envelopes

from aseptic.crypto import SigningKey
from aseptic.errors import ConfigError, InputError, IntegrityError
from aseptic.ledger import Checkpoint, LeafKind, LedgerTampered, hash_entry, verify_ledger
from aseptic.ledger._schema import LEDGER_TABLES

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "P11-11.10a")

Tamper = Callable[[Db], None]


def tampered(site: Site, tamper: Tamper) -> LedgerTampered:
    with site.db() as conn:
        tamper(conn)
    with pytest.raises(LedgerTampered) as info:
        verify_ledger(site.data_dir, site.site_key.public)
    return info.value


def sql(*statements: str) -> Tamper:
    def run(conn: Db) -> None:
        for statement in statements:
            conn.execute(statement)

    return run


def flip_raw_byte(conn: Db) -> None:
    (raw,) = conn.execute("SELECT raw FROM envelopes WHERE leaf = 2").fetchone()
    changed = bytearray(raw)
    changed[len(raw) // 2] ^= 0x01
    conn.execute("UPDATE envelopes SET raw = ? WHERE leaf = 2", (bytes(changed),))


def replace_key_entry(conn: Db) -> None:
    other = SigningKey.generate().public
    payload = f'{{"algorithm":"ed25519","name":"{SOURCE}","public_key":"{other.raw.hex()}"}}'.encode()
    conn.execute("UPDATE keys SET payload = ? WHERE leaf = 0", (payload,))


def rewrite_finding_and_its_leaf_hash(conn: Db) -> None:
    payload = b'{"detector":"none"}'
    conn.execute("UPDATE findings SET payload = ? WHERE leaf = 4", (payload,))
    conn.execute("UPDATE leaves SET hash = ? WHERE idx = 4", (hash_entry(LeafKind.FINDING, payload),))


def forge_checkpoint_time(conn: Db) -> None:
    (body,) = conn.execute("SELECT body FROM checkpoints WHERE id = 1").fetchone()
    forged = body.replace(b"time: 2026-01-01T00:00:00.000000Z", b"time: 2025-12-31T00:00:00.000000Z")
    assert forged != body
    conn.execute(
        "UPDATE checkpoints SET body = ?, time = '2025-12-31T00:00:00.000000Z' WHERE id = 1", (forged,)
    )


TRUNCATE_LAST_LEAF = sql(
    "DELETE FROM readings WHERE leaf = 6",
    "DELETE FROM envelopes WHERE leaf = 6",
    "DELETE FROM leaves WHERE idx = 6",
)

# (attack, tamper, table, row, column) — the first discrepancy must name exactly this place.
ATTACKS: list[tuple[str, Tamper, str, str, str]] = [
    ("envelope_raw_bit_flip", flip_raw_byte, "envelopes", "leaf 2", "raw"),
    (
        "envelope_source",
        sql("UPDATE envelopes SET source = 'evil' WHERE leaf = 2"),
        "envelopes",
        "leaf 2",
        "source",
    ),
    (
        "envelope_sequence",
        sql("UPDATE envelopes SET sequence = 99 WHERE leaf = 2"),
        "envelopes",
        "leaf 2",
        "sequence",
    ),
    (
        "envelope_digest",
        sql("UPDATE envelopes SET digest = zeroblob(32) WHERE leaf = 2"),
        "envelopes",
        "leaf 2",
        "digest",
    ),
    ("envelope_row_deleted", sql("DELETE FROM envelopes WHERE leaf = 2"), "envelopes", "leaf 2", "*"),
    (
        "reading_tag",
        sql("UPDATE readings SET tag = 'ph' WHERE leaf = 2 AND position = 3"),
        "readings",
        "leaf 2 position 3",
        "tag",
    ),
    (
        "reading_time",
        sql("UPDATE readings SET time_us = time_us + 1 WHERE leaf = 2 AND position = 3"),
        "readings",
        "leaf 2 position 3",
        "time_us",
    ),
    (
        "reading_value",
        sql("UPDATE readings SET value = value + 0.5 WHERE leaf = 2 AND position = 3"),
        "readings",
        "leaf 2 position 3",
        "value",
    ),
    (
        "reading_value_to_null",
        sql("UPDATE readings SET value = NULL WHERE leaf = 2 AND position = 3"),
        "readings",
        "leaf 2 position 3",
        "value",
    ),
    (
        "reading_quality",
        sql("UPDATE readings SET quality = 2 WHERE leaf = 2 AND position = 3"),
        "readings",
        "leaf 2 position 3",
        "quality",
    ),
    (
        "reading_source",
        sql("UPDATE readings SET source = 'evil' WHERE leaf = 2 AND position = 3"),
        "readings",
        "leaf 2 position 3",
        "source",
    ),
    (
        "reading_row_deleted",
        sql("DELETE FROM readings WHERE leaf = 2 AND position = 3"),
        "readings",
        "leaf 2 position 3",
        "*",
    ),
    (
        "reading_row_moved",
        sql("UPDATE readings SET position = 9 WHERE leaf = 2 AND position = 3"),
        "readings",
        "leaf 2 position 3",
        "*",
    ),
    (
        "reading_row_inserted",
        sql("INSERT INTO readings VALUES (2, 5, 'ph', 0, 7.0, 0, 'x')"),
        "readings",
        "leaf 2 position 5",
        "*",
    ),
    (
        "reading_row_inserted_under_a_finding",
        sql("INSERT INTO readings VALUES (4, 0, 'ph', 0, 7.0, 0, 'x')"),
        "readings",
        "leaf 4 position 0",
        "leaf",
    ),
    (
        "finding_payload",
        sql("""UPDATE findings SET payload = CAST('{"detector":"none"}' AS BLOB) WHERE leaf = 4"""),
        "findings",
        "leaf 4",
        "payload",
    ),
    ("finding_row_deleted", sql("DELETE FROM findings WHERE leaf = 4"), "findings", "leaf 4", "*"),
    (
        "finding_row_inserted",
        sql("INSERT INTO findings VALUES (100, CAST('{}' AS BLOB))"),
        "findings",
        "leaf 100",
        "leaf",
    ),
    (
        "quarantine_payload",
        sql(
            "UPDATE quarantine SET payload = CAST(replace(CAST(payload AS TEXT), 'bad', 'good')"
            " AS BLOB) WHERE leaf = 5"
        ),
        "quarantine",
        "leaf 5",
        "payload",
    ),
    ("collector_key_replaced", replace_key_entry, "keys", "leaf 0", "payload"),
    ("leaf_hash", sql("UPDATE leaves SET hash = zeroblob(32) WHERE idx = 4"), "leaves", "idx 4", "hash"),
    ("leaf_kind", sql("UPDATE leaves SET kind = 'quarantine' WHERE idx = 4"), "leaves", "idx 4", "kind"),
    ("leaf_row_deleted", sql("DELETE FROM leaves WHERE idx = 3"), "leaves", "idx 3", "*"),
    (
        "leaf_row_inserted",
        sql("INSERT INTO leaves VALUES (7, 'finding', zeroblob(32))"),
        "findings",
        "leaf 7",
        "*",
    ),
    (
        "row_and_leaf_hash_rewritten_together",
        rewrite_finding_and_its_leaf_hash,
        "checkpoints",
        "id 1",
        "root",
    ),
    ("truncated_last_leaf", TRUNCATE_LAST_LEAF, "checkpoints", "id 2", "size"),
    (
        "checkpoint_root",
        sql("UPDATE checkpoints SET root = zeroblob(32) WHERE id = 1"),
        "checkpoints",
        "id 1",
        "root",
    ),
    ("checkpoint_size", sql("UPDATE checkpoints SET size = 3 WHERE id = 1"), "checkpoints", "id 1", "size"),
    (
        "checkpoint_time",
        sql("UPDATE checkpoints SET time = '2030-01-01T00:00:00.000000Z' WHERE id = 1"),
        "checkpoints",
        "id 1",
        "time",
    ),
    (
        "checkpoint_origin",
        sql("UPDATE checkpoints SET origin = 'site-02' WHERE id = 2"),
        "checkpoints",
        "id 2",
        "origin",
    ),
    (
        "checkpoint_key_id",
        sql("UPDATE checkpoints SET key_id = 'ed25519:0' WHERE id = 2"),
        "checkpoints",
        "id 2",
        "key_id",
    ),
    (
        "checkpoint_algorithm",
        sql("UPDATE checkpoints SET algorithm = 'ml-dsa-65' WHERE id = 2"),
        "checkpoints",
        "id 2",
        "algorithm",
    ),
    (
        "checkpoint_signature",
        sql("UPDATE checkpoints SET signature = zeroblob(64) WHERE id = 1"),
        "checkpoints",
        "id 1",
        "signature",
    ),
    ("checkpoint_body_forged", forge_checkpoint_time, "checkpoints", "id 1", "signature"),
]


@pytest.mark.parametrize(
    ("tamper", "table", "row", "column"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS]
)
def test_tampering_is_found_and_named(built: Site, tamper: Tamper, table: str, row: str, column: str) -> None:
    error = tampered(built, tamper)
    first = error.report.first
    assert first is not None
    assert (first.table, first.row, first.column) == (table, row, column), str(first)
    assert f"{table} {row}, column {column}" in str(error)


def test_clean_ledger_verifies(built: Site) -> None:
    report = verify_ledger(built.data_dir, built.site_key.public)
    assert report.size == 7
    assert report.leaves == {"key": 1, "envelope": 4, "finding": 1, "quarantine": 1}
    assert report.readings == 20
    assert (report.checkpoints, report.consistency_proofs) == (2, 1)
    assert (report.envelope_signatures, report.envelopes_without_logged_key) == (4, 0)
    assert report.discrepancies == []


def test_empty_ledger_verifies(site: Site) -> None:
    site.open().close()
    assert verify_ledger(site.data_dir, site.site_key.public).size == 0


def test_leaf_hash_mismatch_with_no_checkpoint_names_the_row(site: Site) -> None:
    with site.open() as ledger:
        ledger.append_finding({"a": 1})
    error = tampered(site, sql("UPDATE leaves SET hash = zeroblob(32) WHERE idx = 0"))
    assert error.report.first is not None
    assert (error.report.first.table, error.report.first.column) == ("findings", "payload")
    assert "no checkpoint covers it yet" in str(error)


def test_verify_with_another_site_key_fails(built: Site) -> None:
    with pytest.raises(LedgerTampered, match="column signature"):
        verify_ledger(built.data_dir, SigningKey.generate().public)


def test_truncation_with_its_checkpoint_is_caught_by_a_kept_checkpoint(built: Site) -> None:
    with built.open() as ledger:
        kept = Checkpoint.from_note(ledger.checkpoints()[-1].to_note())
    with built.db() as conn:
        TRUNCATE_LAST_LEAF(conn)
        conn.execute("DELETE FROM checkpoints WHERE id = 2")
    verify_ledger(built.data_dir, built.site_key.public)  # consistent with what is left...
    with pytest.raises(LedgerTampered, match="trusted checkpoint size 7, column size"):
        verify_ledger(built.data_dir, built.site_key.public, trusted=[kept])


def test_envelope_signed_by_a_key_never_logged_is_found(site: Site) -> None:
    rogue = SigningKey.generate()
    (envelope,) = make_envelopes(rogue, 1)
    with site.open() as ledger:
        ledger.append_key(SOURCE, site.collector_key.public)
        ledger.append_envelope(envelope, envelope.to_bytes())
    with pytest.raises(LedgerTampered, match="never logged for source") as info:
        verify_ledger(site.data_dir, site.site_key.public)
    assert info.value.report.first is not None and info.value.report.first.column == "raw"


def test_envelopes_without_logged_keys_are_counted_or_refused(site: Site) -> None:
    (envelope,) = make_envelopes(site.collector_key, 1)
    with site.open() as ledger:
        ledger.append_envelope(envelope, envelope.to_bytes())
    assert verify_ledger(site.data_dir, site.site_key.public).envelopes_without_logged_key == 1
    with pytest.raises(LedgerTampered, match="no collector key"):
        verify_ledger(site.data_dir, site.site_key.public, require_signatures=True)


def test_garbage_file_named_ledger_db_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / "ledger.db").write_bytes(b"this is not a database, just garbage bytes " * 100)
    with pytest.raises(IntegrityError, match=r"ledger.db: the database file is corrupt"):
        verify_ledger(tmp_path, SigningKey.generate().public)


@pytest.mark.sqlite_only  # truncates the ledger.db file itself; a PostgreSQL server owns its pages
def test_truncated_database_file_is_corrupt(built: Site) -> None:
    path = built.data_dir / "ledger.db"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IntegrityError, match="ledger.db") as info:
        verify_ledger(built.data_dir, built.site_key.public)
    assert not isinstance(info.value, LedgerTampered)


def test_missing_data_dir_and_foreign_database_are_usage_errors(tmp_path: Path) -> None:
    key = SigningKey.generate().public
    with pytest.raises(ConfigError, match="does not exist"):
        verify_ledger(tmp_path / "nowhere", key)
    with pytest.raises(ConfigError, match="no ledger"):
        verify_ledger(tmp_path, key)
    sqlite3.connect(tmp_path / "ledger.db").execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(InputError, match="not an Aseptic ledger"):
        verify_ledger(tmp_path, key)


def test_dropped_table_is_tampering(built: Site) -> None:
    with built.db() as conn:
        conn.execute("DROP TABLE findings")
    with pytest.raises(IntegrityError, match="table findings has columns"):
        verify_ledger(built.data_dir, built.site_key.public)


def _mutate(value: object, salt: int) -> object:
    if isinstance(value, bytes):
        flipped = bytearray(value)
        flipped[salt % len(flipped)] ^= 1 << (salt % 8)
        return bytes(flipped)
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int):
        return value + 1 + salt % 3
    if isinstance(value, float):
        return value + 0.25
    return str(value) + "x"


@pytest.fixture
def built_all_kinds(built: Site) -> Site:
    """``built`` plus one entry of every JSON kind, so every table has a row to mutate."""
    with built.open() as ledger:
        ledger.append_entry(LeafKind.AUDIT, {"entry": "setpoint", "new": 6.5, "old": 6.4, "why": "trim"})
        ledger.append_entry(LeafKind.DECISION, {"allowed": False, "entry": "access_decision"})
        ledger.append_entry(LeafKind.SIGNATURE, {"meaning": "reviewed", "record": "ab" * 32})
        ledger.checkpoint()
    return built


MUTABLE = [
    (table, column) for table, columns in LEDGER_TABLES.items() for column in columns if column != "id"
]


_KEYS = {"leaves": ("idx",), "readings": ("leaf", "position"), "checkpoints": ("id",)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(MUTABLE), st.integers(0, 10_000))
def test_any_random_mutation_of_any_row_is_detected(
    built_all_kinds: Site, target: tuple[str, str], salt: int
) -> None:
    built = built_all_kinds
    table, column = target
    if built.store is not None:
        _mutate_postgres_and_verify(built, table, column, salt)
        return
    keys = ("leaf", "position") if table == "readings" else ("rowid",)  # readings has no rowid
    where = " AND ".join(f"{key} = ?" for key in keys)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch)
        shutil.copy(built.data_dir / "ledger.db", copy / "ledger.db")
        conn = sqlite3.connect(copy / "ledger.db")
        with conn:
            rows = conn.execute(f"SELECT {column}, {', '.join(keys)} FROM {table}").fetchall()  # noqa: S608
            value, *key = rows[salt % len(rows)]
            update = f"UPDATE {table} SET {column} = ? WHERE {where}"  # noqa: S608 - test constants
            try:
                conn.execute(update, (_mutate(value, salt), *key))
            except sqlite3.IntegrityError:
                assume(False)  # the schema itself refuses this change (a duplicate key)
        conn.close()
        with pytest.raises(IntegrityError):
            verify_ledger(copy, built.site_key.public)


def _mutate_postgres_and_verify(built: Site, table: str, column: str, salt: int) -> None:
    """Mutate one committed row, verify, and put the row back (the ledger is shared by the examples)."""
    import psycopg

    keys = _KEYS.get(table, ("leaf",))
    names = ", ".join(keys)
    assert built.store is not None
    with psycopg.connect(built.store, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        rows = conn.execute(f"SELECT {column}, {names} FROM {table} ORDER BY {names}").fetchall()  # noqa: S608
        value, *key = rows[salt % len(rows)]
        where = " AND ".join(f"{k} = %s" for k in keys)
        try:
            changed = conn.execute(
                f"UPDATE {table} SET {column} = %s WHERE {where} RETURNING {names}",  # noqa: S608
                (_mutate(value, salt), *key),
            ).fetchone()
        except psycopg.errors.UniqueViolation:
            assume(False)  # the schema itself refuses this change (a duplicate key)
        assert changed is not None
        try:
            with pytest.raises(IntegrityError):
                verify_ledger(built.data_dir, built.site_key.public)
        finally:
            conn.execute(
                f"UPDATE {table} SET {column} = %s WHERE {where}",  # noqa: S608 - test constants
                (value, *changed),
            )
    verify_ledger(built.data_dir, built.site_key.public)  # the row is back: clean again

"""Tamper test: random single mutations of a stored log; the share ``aseptic ledger verify`` detects.

    .venv/bin/python -m benchmarks.ledger_tamper [--mutations 1000] [--seed 1] [--data DIR] [--json]

A log is built once with the public API: a collector key, 30 signed envelopes of 10 readings, findings,
quarantine events, audit, decision and signature entries, and a checkpoint after every 15 leaves and
at the end. The auditor keeps every checkpoint note (as published to auditors and witnesses). Each
mutation starts from a fresh copy of that ``ledger.db`` and applies exactly one change:

- ``flip``: one byte (text, blob) or bit (integer, real) of one column of one random row of any
  table (leaves, envelopes, readings, findings, quarantine, keys, audit, decisions, signatures,
  checkpoints; the checkpoints' row id, which orders nothing signed, is left out);
- ``delete``: one random row of any table;
- ``swap``: the non-key columns of two random rows of one table (rows that are equal are redrawn);
- ``truncate-file``: ``ledger.db`` cut at a random byte offset;
- ``truncate-log``: the last k leaves, their rows and the checkpoints above them deleted (a
  careful attacker keeping the file consistent);
- ``replace-checkpoint``: one stored checkpoint replaced by another stored one, or by one with a
  different root signed by an attacker's key;
- ``file-flip``: one random byte of the file flipped. A flip can land in unused space (free bytes
  of a page) and change no row at all: such flips are counted apart as "no change", not as misses.

Detected means ``aseptic ledger verify --data-dir D --require-signatures --checkpoint NOTE...``
exits 1 (run in-process through the CLI's own entry point). Anything else is a miss and printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sqlite3
import struct
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import Checkpoint, LeafKind, Ledger
from aseptic.telemetry import Envelope, Quality, QuarantineEvent, Reading

START = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = ("flip", "delete", "swap", "truncate-file", "truncate-log", "replace-checkpoint", "file-flip")
TABLES = {
    "leaves": ("idx", ("kind", "hash")),
    "envelopes": ("leaf", ("source", "sequence", "digest", "raw")),
    "readings": ("leaf, position", ("tag", "time_us", "value", "quality", "source")),
    "findings": ("leaf", ("payload",)),
    "quarantine": ("leaf", ("payload",)),
    "keys": ("leaf", ("payload",)),
    "audit": ("leaf", ("payload",)),
    "decisions": ("leaf", ("payload",)),
    "signatures": ("leaf", ("payload",)),
    "checkpoints": ("id", ("origin", "size", "root", "time", "key_id", "algorithm", "body", "signature")),
}


def build_log(data_dir: Path) -> list[Path]:
    """The stored log to mutate; returns the checkpoint notes the auditor keeps."""
    site_key, collector = SigningKey.generate(), SigningKey.generate()
    clock = SimClock(START + timedelta(days=1))
    notes: list[Path] = []
    previous = bytes(32)
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        ledger.append_key("collector-01", collector.public)
        for sequence in range(1, 31):
            readings = [
                Reading(
                    ("temperature_k", "ph", "dissolved_o2_mg_per_l")[i % 3],
                    START + timedelta(seconds=10 * sequence + i),
                    6.5 + sequence / 100 + i / 1000,
                    Quality.GOOD if i % 4 else Quality.UNCERTAIN,
                    "fermenter-01/AT-202",
                )
                for i in range(10)
            ]
            envelope = Envelope.seal(
                source="collector-01",
                sequence=sequence,
                previous_digest=previous,
                readings=readings,
                key=collector,
            )
            previous = envelope.digest
            ledger.append_envelope(envelope, envelope.to_bytes())
            if sequence % 5 == 0:
                ledger.append_finding({"batch_id": "b-1", "detector": "cusum", "score": sequence / 3})
                ledger.append_entry(
                    LeafKind.AUDIT, {"entry": "setpoint", "new": sequence, "old": 1, "why": "x"}
                )
                ledger.append_entry(LeafKind.DECISION, {"decision": "allow", "entry": "access_decision"})
            if sequence % 10 == 0:
                ledger.append_quarantine(_quarantine(sequence))
                ledger.append_entry(LeafKind.SIGNATURE, {"meaning": "reviewed", "record": f"b-{sequence}"})
            if ledger.size // 15 > len(notes):
                clock.advance(60)
                notes.append(_keep(data_dir, ledger.checkpoint(), len(notes)))
        clock.advance(60)
        notes.append(_keep(data_dir, ledger.checkpoint(), len(notes)))
    conn = sqlite3.connect(data_dir / "ledger.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return notes


def _quarantine(sequence: int) -> QuarantineEvent:
    return QuarantineEvent(
        time=START + timedelta(seconds=sequence),
        reason="malformed",
        error_class="InputError",
        message=f"bad frame {sequence}",
        size=4,
        sha256="ab" * 32,
        stored_size=4,
        stored_sha256="ab" * 32,
        file=None,
        source=None,
        sequence=None,
        digest=None,
        authenticated=False,
    )


def _keep(data_dir: Path, checkpoint: Checkpoint, number: int) -> Path:
    path = data_dir.parent / f"kept-{number}.checkpoint"
    path.write_text(checkpoint.to_note(), encoding="utf-8")
    return path


def _content(path: Path) -> str | None:
    """A digest of every row of every table (None if the file cannot be read as a database)."""
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        conn.text_factory = bytes  # a flip can leave text that is not UTF-8
        try:
            digest = hashlib.sha256()
            for table in TABLES:
                for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1"):  # noqa: S608 - fixed names
                    digest.update(repr(row).encode())
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            digest.update(str(ok).encode())
            return digest.hexdigest()
        finally:
            conn.close()
    except (sqlite3.Error, UnicodeDecodeError):
        return None


def _flip_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bytes):
        if not value:
            return b"\x00"
        data = bytearray(value)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if isinstance(value, str):
        if not value:
            return "x"
        chars = list(value)
        i = rng.randrange(len(chars))
        chars[i] = chr(ord(chars[i]) ^ 1) if ord(chars[i]) > 1 else "x"
        return "".join(chars)
    if isinstance(value, int):
        return value ^ (1 << rng.randrange(8))
    if isinstance(value, float):
        (bits,) = struct.unpack("<Q", struct.pack("<d", value))
        return struct.unpack("<d", struct.pack("<Q", bits ^ (1 << rng.randrange(64))))[0]
    return 1  # NULL (a NaN reading) becomes a number


def _pick(conn: sqlite3.Connection, table: str, rng: random.Random) -> tuple[str, tuple[Any, ...]]:
    """A random row of ``table``: its WHERE clause and arguments (raises LookupError if empty)."""
    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
    if not count:
        raise LookupError("empty table")
    offset = rng.randrange(count)
    if table == "readings":  # WITHOUT ROWID: its key is (leaf, position)
        row = conn.execute("SELECT leaf, position FROM readings LIMIT 1 OFFSET ?", (offset,)).fetchone()
        return "leaf = ? AND position = ?", tuple(row)
    row = conn.execute(f"SELECT rowid FROM {table} LIMIT 1 OFFSET ?", (offset,)).fetchone()  # noqa: S608
    return "rowid = ?", tuple(row)


def mutate(path: Path, kind: str, rng: random.Random) -> str:
    """Apply one mutation of ``kind`` to ``ledger.db`` at ``path``; describe it (raises to redraw)."""
    if kind == "truncate-file":
        size = path.stat().st_size
        cut = rng.randrange(size)
        os.truncate(path, cut)
        return f"file cut from {size} to {cut} bytes"
    if kind == "file-flip":
        data = bytearray(path.read_bytes())
        offset = rng.randrange(len(data))
        data[offset] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        return f"file byte {offset} flipped"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        description = _mutate_rows(conn, kind, rng)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return description
    finally:
        conn.close()


def _mutate_rows(conn: sqlite3.Connection, kind: str, rng: random.Random) -> str:
    if kind == "truncate-log":
        size = conn.execute("SELECT max(idx) + 1 FROM leaves").fetchone()[0]
        cut = size - rng.randint(1, min(20, size - 1))
        for table in TABLES:
            if table == "leaves":
                conn.execute("DELETE FROM leaves WHERE idx >= ?", (cut,))
            elif table == "checkpoints":
                conn.execute("DELETE FROM checkpoints WHERE size > ?", (cut,))
            else:
                conn.execute(f"DELETE FROM {table} WHERE leaf >= ?", (cut,))  # noqa: S608 - fixed names
        return f"log truncated to {cut} leaves with the checkpoints above"
    if kind == "replace-checkpoint":
        ids = [row[0] for row in conn.execute("SELECT id FROM checkpoints")]
        victim = rng.choice(ids)
        if rng.random() < 0.5 and len(ids) > 1:
            donor = rng.choice([i for i in ids if i != victim])
            conn.execute(
                "UPDATE checkpoints SET (origin, size, root, time, key_id, algorithm, body, signature) ="
                " (SELECT origin, size, root, time, key_id, algorithm, body, signature FROM checkpoints"
                " WHERE id = ?) WHERE id = ?",
                (donor, victim),
            )
            return f"checkpoint {victim} replaced by a copy of checkpoint {donor}"
        body, signature = conn.execute(
            "SELECT body, signature FROM checkpoints WHERE id = ?", (victim,)
        ).fetchone()
        old = Checkpoint.from_body(body, signature)
        forged = Checkpoint.sign(
            origin=old.origin, size=old.size, root=os.urandom(32), time=old.time, key=SigningKey.generate()
        )
        conn.execute(
            "UPDATE checkpoints SET root = ?, key_id = ?, body = ?, signature = ? WHERE id = ?",
            (forged.root, forged.key_id, forged.body, forged.signature, victim),
        )
        return f"checkpoint {victim} replaced by a forged one (attacker's key)"
    table = rng.choice(list(TABLES))
    key, columns = TABLES[table]
    match, args = _pick(conn, table, rng)
    if kind == "delete":
        conn.execute(f"DELETE FROM {table} WHERE {match}", args)  # noqa: S608 - fixed names
        return f"{table} row {args} deleted"
    if kind == "flip":
        keys = [k.strip() for k in key.split(",") if not (table == "checkpoints" and k == "id")]
        column = rng.choice([*keys, *columns])
        (value,) = conn.execute(f"SELECT {column} FROM {table} WHERE {match}", args).fetchone()  # noqa: S608
        flipped = _flip_value(value, rng)
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {match}", (flipped, *args))  # noqa: S608
        return f"{table} row {args} column {column} flipped"
    # swap: the non-key columns of two rows of the same table
    match2, args2 = _pick(conn, table, rng)
    listed = ", ".join(columns)
    first = conn.execute(f"SELECT {listed} FROM {table} WHERE {match}", args).fetchone()  # noqa: S608
    second = conn.execute(f"SELECT {listed} FROM {table} WHERE {match2}", args2).fetchone()  # noqa: S608
    if first == second:
        raise LookupError("equal rows")
    assign = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(f"UPDATE {table} SET {assign} WHERE {match}", (*second, *args))  # noqa: S608
    conn.execute(f"UPDATE {table} SET {assign} WHERE {match2}", (*first, *args2))  # noqa: S608
    return f"{table} rows {args} and {args2} swapped"


def verify_exit_code(data_dir: Path, notes: list[Path]) -> int:
    from typer.testing import CliRunner

    from aseptic.cli.main import app

    args = ["ledger", "verify", "--data-dir", str(data_dir), "--require-signatures"]
    for note in notes:
        args += ["--checkpoint", str(note)]
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return -1  # a crash (traceback) is a bug, never counted as detection
    return result.exit_code


def tamper_test(mutations: int, seed: int, work: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    pristine_dir = work / "pristine" / "data"
    pristine_dir.mkdir(parents=True)
    notes = build_log(pristine_dir)
    assert verify_exit_code(pristine_dir, notes) == 0, "the unmutated log must verify"
    pristine = pristine_dir / "ledger.db"
    baseline = _content(pristine)
    by_kind: Counter[str] = Counter()
    detected: Counter[str] = Counter()
    unchanged: Counter[str] = Counter()
    misses: list[str] = []
    target = work / "mutated" / "data"
    target.mkdir(parents=True)
    shutil.copy(pristine_dir / "site.pub", target / "site.pub")
    done = 0
    while done < mutations:
        kind = KINDS[done % len(KINDS)] if done < len(KINDS) else rng.choice(KINDS)
        for suffix in ("", "-wal", "-shm"):
            (target / f"ledger.db{suffix}").unlink(missing_ok=True)
        shutil.copy(pristine, target / "ledger.db")
        try:
            description = mutate(target / "ledger.db", kind, rng)
        except (LookupError, sqlite3.IntegrityError):
            continue  # nothing to mutate, equal rows or a key clash: draw again
        done += 1
        if kind == "file-flip" and _content(target / "ledger.db") == baseline:
            unchanged[kind] += 1
            continue
        by_kind[kind] += 1
        if verify_exit_code(target, notes) == 1:
            detected[kind] += 1
        else:
            misses.append(f"{kind}: {description}")
    counted = sum(by_kind.values())
    return {
        "mutations": mutations,
        "counted": counted,
        "detected": sum(detected.values()),
        "share": round(sum(detected.values()) / counted, 4) if counted else None,
        "no_change": dict(unchanged),
        "by_kind": {k: {"mutations": by_kind[k], "detected": detected[k]} for k in KINDS},
        "misses": misses[:20],
        "leaves": int(sqlite3.connect(pristine).execute("SELECT count(*) FROM leaves").fetchone()[0]),
        "checkpoints_kept": len(notes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mutations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="Work directory (default: a temporary one).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.data if args.data is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        result = tamper_test(args.mutations, args.seed, work)
        result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"log: {result['leaves']} leaves, {result['checkpoints_kept']} checkpoints kept by the auditor")
    print(f"{'kind':<20}{'mutations':>10}{'detected':>10}")
    for kind, row in result["by_kind"].items():
        print(f"{kind:<20}{row['mutations']:>10}{row['detected']:>10}")
    print(f"detected {result['detected']} of {result['counted']} ({100 * (result['share'] or 0):.1f}%)")
    print(f"file flips that changed no row (excluded): {sum(result['no_change'].values())}")
    for miss in result["misses"]:
        print(f"  missed: {miss}")


if __name__ == "__main__":
    main()

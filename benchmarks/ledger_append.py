"""Ledger append throughput on SQLite and PostgreSQL, each beside a raw bulk insert in the same database.

    .venv/bin/python -m benchmarks.ledger_append [--store sqlite --store postgresql] [--envelopes 400]
        [--readings 250] [--batch 40 ...] [--audit 4000] [--audit-batch 100] [--repeat 3] [--json]

"append": already verified ``Envelope`` values (decoded and Ed25519-checked at ingest, as the
verifier hands them over) through ``Ledger.append_envelope`` — leaf hash, ``leaves``/``envelopes``
rows, one ``readings`` row per reading (queryable by tag and time), Merkle frontier — ``--batch``
envelopes per transaction (``Ledger.batch()``). "raw": the same reading rows, built beforehand,
bulk-inserted into a table with the ``readings`` columns, primary key and (tag, time) index in the
same kind of database, same rows per commit: SQLite ``executemany`` (WAL, ``synchronous=FULL``) /
PostgreSQL binary ``COPY``. "audit": ``Ledger.append_entries(LeafKind.AUDIT, ...)`` of realistic
audit-trail entries, ``--audit-batch`` per transaction. "verify": a full ``verify_ledger``.

CPU: the benchmark process's CPU time, plus for PostgreSQL the server backend's (read from
/proc/PID/stat; the server runs on this machine), so "per CPU-s" counts both sides. PostgreSQL is
a throwaway server from Debian's packages on 127.0.0.1 (tests/pg_support.py) with ``fsync=on`` and
``synchronous_commit=on``: a commit is as durable as SQLite's ``synchronous=FULL``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import LeafKind, Ledger, verify_ledger
from aseptic.telemetry import Envelope, Quality, Reading
from aseptic.twin import TAGS

START = datetime(2026, 1, 1, tzinfo=UTC)
_COLUMNS = "leaf, position, tag, time_us, value, quality, source"
_RAW_DDL = """
CREATE TABLE readings (
    leaf INTEGER NOT NULL, position INTEGER NOT NULL, tag TEXT NOT NULL, time_us INTEGER NOT NULL,
    value REAL, quality INTEGER NOT NULL, source TEXT NOT NULL, PRIMARY KEY (leaf, position)
) WITHOUT ROWID;
CREATE INDEX readings_by_tag_time ON readings(tag, time_us);
"""
_RAW_PG_DDL = [
    "CREATE TABLE raw_readings (leaf BIGINT NOT NULL, position BIGINT NOT NULL, tag TEXT NOT NULL,"
    " time_us BIGINT NOT NULL, value DOUBLE PRECISION, quality BIGINT NOT NULL, source TEXT NOT NULL,"
    " PRIMARY KEY (leaf, position))",
    "CREATE INDEX raw_by_tag_time ON raw_readings(tag, time_us)",
]
Rows = list[list[tuple[Any, ...]]]


def make_envelopes(key: SigningKey, count: int, per: int) -> list[Envelope]:
    out: list[Envelope] = []
    previous = bytes(32)
    for sequence in range(1, count + 1):
        readings = [
            Reading(
                TAGS[i % len(TAGS)].name,
                START + timedelta(seconds=12 * (sequence * per + i) // len(TAGS)),
                1.0 + i / 1000,
                Quality.GOOD,
                f"fermenter-01/{TAGS[i % len(TAGS)].device}",
            )
            for i in range(per)
        ]
        sealed = Envelope.seal(
            source="collector-01", sequence=sequence, previous_digest=previous, readings=readings, key=key
        )
        previous = sealed.digest
        decoded = Envelope.from_bytes(sealed.to_bytes())
        _ = decoded.readings  # the verifier at ingest has materialised them already
        out.append(decoded)
    return out


def audit_entries(count: int) -> list[dict[str, Any]]:
    return [
        {
            "entry": "record_change",
            "who": {"id": "user:qa-07", "name": "A. Reviewer"},
            "what": {"record": f"recipe/fermenter-01/ph_setpoint#{n}", "old": 6.5, "new": 6.4 + n % 3 / 10},
            "when": f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.000000Z",
            "why": "deviation DV-2026-014 corrective action",
            "system": "aseptic/site-01",
            "clock": {"synchronised": True, "source": "chrony"},
        }
        for n in range(count)
    ]


def _backend_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a local server process (0 when there is none)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Target:
    """Where a run writes: a fresh SQLite data directory, or a fresh PostgreSQL database."""

    def __init__(self, kind: str, workdir: Path, new_database: Callable[[], str] | None) -> None:
        self.kind = kind
        self.workdir = workdir
        self.url = new_database() if new_database is not None else None
        self.raw_url = new_database() if new_database is not None else None

    def open(self, site: SigningKey) -> Ledger:
        return Ledger.open(self.workdir, site_key=site, clock=SimClock(START), store=self.url)

    def backend_pid(self, ledger: Ledger) -> int | None:
        store = ledger._store  # the benchmark reads the connection's server pid, nothing else
        conn = getattr(store, "conn", None)
        return int(conn.info.backend_pid) if self.url is not None and conn is not None else None


def run_append(
    target: Target, site: SigningKey, envelopes: list[Envelope], batch: int
) -> tuple[float, float]:
    """Wall and CPU seconds (client + server) to append ``envelopes`` to a fresh ledger."""
    with target.open(site) as ledger:
        pid = target.backend_pid(ledger)
        server_cpu = _backend_cpu_s(pid)
        started, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(envelopes), batch):
            with ledger.batch():
                for envelope in envelopes[at : at + batch]:
                    ledger.append_envelope(envelope, envelope.to_bytes())
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        cpu += _backend_cpu_s(pid) - server_cpu
        ledger.checkpoint()
    return elapsed, cpu


def run_audit(
    target: Target, site: SigningKey, entries: list[dict[str, Any]], batch: int
) -> tuple[float, float]:
    with target.open(site) as ledger:
        pid = target.backend_pid(ledger)
        server_cpu = _backend_cpu_s(pid)
        started, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(entries), batch):
            ledger.append_entries(LeafKind.AUDIT, entries[at : at + batch])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        return elapsed, cpu + _backend_cpu_s(pid) - server_cpu


def run_raw_sqlite(workdir: Path, rows: Rows, batch: int) -> tuple[float, float]:
    conn = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_RAW_DDL)
        started, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT INTO readings VALUES ({', '.join('?' * 7)})",  # noqa: S608 - constant
                [r for env in rows[at : at + batch] for r in env],
            )
            conn.execute("COMMIT")
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        conn.close()


def run_raw_postgres(url: str, rows: Rows, batch: int) -> tuple[float, float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _RAW_PG_DDL:
            conn.execute(statement)  # type: ignore[arg-type]
        pid = int(conn.info.backend_pid)
        server_cpu = _backend_cpu_s(pid)
        started, cpu = time.perf_counter(), time.process_time()
        cursor = conn.cursor()
        for at in range(0, len(rows), batch):
            with conn.transaction():
                with cursor.copy(f"COPY raw_readings ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:  # type: ignore[arg-type]
                    copy.set_types(["int8", "int8", "text", "int8", "float8", "int8", "text"])
                    for env in rows[at : at + batch]:
                        for row in env:
                            copy.write_row(row)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        return elapsed, cpu + _backend_cpu_s(pid) - server_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", action="append", choices=["sqlite", "postgresql"], help="repeatable")
    parser.add_argument("--envelopes", type=int, default=400)
    parser.add_argument("--readings", type=int, default=250, help="readings per envelope")
    parser.add_argument("--batch", type=int, action="append", help="envelopes per transaction (repeatable)")
    parser.add_argument("--audit", type=int, default=4000, help="audit entries appended per run")
    parser.add_argument("--audit-batch", type=int, default=100, help="audit entries per transaction")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    stores = args.store or ["sqlite", "postgresql"]
    batches = args.batch or [40]

    site, collector = SigningKey.generate(), SigningKey.generate()
    envelopes = make_envelopes(collector, args.envelopes, args.readings)
    entries = audit_entries(args.audit)
    epoch, one_us = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
    rows = [
        [
            (leaf, p, r.tag, (r.time - epoch) // one_us, r.value, int(r.quality), r.source)
            for p, r in enumerate(e.readings)
        ]
        for leaf, e in enumerate(envelopes)
    ]
    total = args.envelopes * args.readings
    server = None
    new_database: Callable[[], str] | None = None
    if "postgresql" in stores:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from pg_support import PgServer, find_pg_bin  # the tests' throwaway server

        bin_dir = find_pg_bin()
        if bin_dir is None:
            print("postgresql: server binaries not found (make system-deps); skipped", file=sys.stderr)
            stores = [s for s in stores if s != "postgresql"]
        else:
            server = PgServer.start(bin_dir, fsync=True)
            os.environ["PGPASSFILE"] = str(server.passfile)
            new_database = server.create_database
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="aseptic-ledger-bench-", dir=args.data) as tmp:
            for store in stores:
                for batch in batches:
                    results.append(
                        _series(store, batch, Path(tmp), new_database, site, envelopes, rows, entries, args)
                    )
    finally:
        if server is not None:
            server.stop()
    summary = {
        "readings": total,
        "readings_per_envelope": args.readings,
        "audit_entries": args.audit,
        "runs": results,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{total} readings in {args.envelopes} envelopes of {args.readings}; {args.audit} audit entries;"
            f" best (median) of {args.repeat}"
        )
        for r in results:
            print(
                f"{r['store']:<10} batch {r['envelopes_per_transaction']:>3}:"
                f" append {r['append_readings_per_s_best']:>9,}/s ({r['append_readings_per_s_median']:,};"
                f" {r['append_readings_per_cpu_s_best']:,}/CPU-s) | raw {r['raw_readings_per_s_best']:,}/s"
                f" ({r['raw_readings_per_cpu_s_best']:,}/CPU-s) | ratio {r['ratio_best']}"
                f" | audit {r['audit_entries_per_s_best']:,}/s ({r['audit_entries_per_cpu_s_best']:,}/CPU-s)"
                f" | verify {r['verify_readings_per_s_best']:,}/s"
            )
    return 0


def _series(
    store: str,
    batch: int,
    tmp: Path,
    new_database: Callable[[], str] | None,
    site: SigningKey,
    envelopes: list[Envelope],
    rows: Rows,
    entries: list[dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    total = len(envelopes) * args.readings
    append_s, append_cpu, raw_s, raw_cpu, audit_s, audit_cpu, verify_s = [], [], [], [], [], [], []
    for run in range(args.repeat):
        work = tmp / f"{store}-b{batch}-r{run}"
        for sub in ("a", "raw", "audit"):
            (work / sub).mkdir(parents=True)
        factory = new_database if store == "postgresql" else None
        target = Target(store, work / "a", factory)
        wall, cpu = run_append(target, site, envelopes, batch)
        append_s.append(wall)
        append_cpu.append(cpu)
        if target.raw_url is not None:
            wall, cpu = run_raw_postgres(target.raw_url, rows, batch)
        else:
            wall, cpu = run_raw_sqlite(work / "raw", rows, batch)
        raw_s.append(wall)
        raw_cpu.append(cpu)
        wall, cpu = run_audit(Target(store, work / "audit", factory), site, entries, args.audit_batch)
        audit_s.append(wall)
        audit_cpu.append(cpu)
        started = time.perf_counter()
        verify_ledger(work / "a", site.public)
        verify_s.append(time.perf_counter() - started)
    return {
        "store": store,
        "envelopes_per_transaction": batch,
        "append_readings_per_s_best": round(total / min(append_s)),
        "append_readings_per_s_median": round(total / statistics.median(append_s)),
        "append_readings_per_cpu_s_best": round(total / min(append_cpu)),
        "raw_readings_per_s_best": round(total / min(raw_s)),
        "raw_readings_per_cpu_s_best": round(total / min(raw_cpu)),
        "ratio_best": round(min(raw_s) / min(append_s), 3),
        "ratio_cpu_best": round(min(raw_cpu) / min(append_cpu), 3),
        "audit_entries_per_s_best": round(len(entries) / min(audit_s)),
        "audit_entries_per_cpu_s_best": round(len(entries) / min(audit_cpu)),
        "verify_readings_per_s_best": round(total / min(verify_s)),
    }


if __name__ == "__main__":
    raise SystemExit(main())

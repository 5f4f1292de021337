"""Ledger append and verify throughput: readings per second in envelopes of 250, beside raw SQLite.

    .venv/bin/python -m benchmarks.ledger_append [--envelopes 400] [--readings 250]
                                                 [--batch 1 --batch 10 --batch 40] [--repeat 3] [--json]

"append": already verified ``Envelope`` values (decoded, readings materialised, as the ingest
verifier hands them over) through ``Ledger.append_envelope`` — leaf hash, ``leaves``/``envelopes``
rows, one ``readings`` row per reading, Merkle frontier — ``--batch`` envelopes per transaction
(``Ledger.batch()``; 1 = a commit and fsync per envelope). "raw": the same reading rows, built
beforehand, ``executemany``-inserted into a table with the ledger's ``readings`` columns, key and
(tag, time) index, same WAL and ``synchronous=FULL``, same rows per commit. "verify": a full
``verify_ledger`` of the appended ledger (re-hash, decode, compare every reading row). Runs
alternate in one thread; best and median of ``--repeat`` are reported (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import Ledger, verify_ledger
from aseptic.telemetry import Envelope, Quality, Reading
from aseptic.twin import TAGS

START = datetime(2026, 1, 1, tzinfo=UTC)
_RAW_DDL = """
CREATE TABLE readings (
    leaf INTEGER NOT NULL, position INTEGER NOT NULL, tag TEXT NOT NULL, time_us INTEGER NOT NULL,
    value REAL, quality INTEGER NOT NULL, source TEXT NOT NULL, PRIMARY KEY (leaf, position)
) WITHOUT ROWID;
CREATE INDEX readings_by_tag_time ON readings(tag, time_us);
"""


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


def run_append(workdir: Path, site: SigningKey, envelopes: list[Envelope], batch: int) -> tuple[float, float]:
    """Wall and CPU seconds to append ``envelopes`` to a fresh ledger."""
    with Ledger.open(workdir, site_key=site, clock=SimClock(START)) as ledger:
        started, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(envelopes), batch):
            with ledger.batch():
                for envelope in envelopes[at : at + batch]:
                    ledger.append_envelope(envelope, envelope.to_bytes())
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        ledger.checkpoint()
    return elapsed, cpu


def run_raw(workdir: Path, rows: list[list[tuple[Any, ...]]], batch: int) -> float:
    conn = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_RAW_DDL)
        started = time.perf_counter()
        for at in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)",
                [r for env in rows[at : at + batch] for r in env],
            )
            conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envelopes", type=int, default=400)
    parser.add_argument("--readings", type=int, default=250, help="readings per envelope")
    parser.add_argument("--batch", type=int, action="append", help="envelopes per transaction (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    batches = args.batch or [1, 10, 40]

    site, collector = SigningKey.generate(), SigningKey.generate()
    envelopes = make_envelopes(collector, args.envelopes, args.readings)
    epoch, one_us = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
    rows = [
        [
            (leaf, p, r.tag, (r.time - epoch) // one_us, r.value, int(r.quality), r.source)
            for p, r in enumerate(e.readings)
        ]
        for leaf, e in enumerate(envelopes)
    ]
    total = args.envelopes * args.readings
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aseptic-ledger-bench-") as tmp:
        for batch in batches:
            append_s, append_cpu_s, raw_s, verify_s = [], [], [], []
            for run in range(args.repeat):
                work = Path(tmp) / f"b{batch}-r{run}"
                (work / "a").mkdir(parents=True)
                (work / "b").mkdir()
                wall, cpu = run_append(work / "a", site, envelopes, batch)
                append_s.append(wall)
                append_cpu_s.append(cpu)
                raw_s.append(run_raw(work / "b", rows, batch))
                started = time.perf_counter()
                verify_ledger(work / "a", site.public)
                verify_s.append(time.perf_counter() - started)
            results.append(
                {
                    "envelopes_per_transaction": batch,
                    "append_readings_per_s_best": round(total / min(append_s)),
                    "append_readings_per_s_median": round(total / statistics.median(append_s)),
                    "append_readings_per_cpu_s_best": round(total / min(append_cpu_s)),
                    "raw_sqlite_readings_per_s_best": round(total / min(raw_s)),
                    "ratio_best": round(min(raw_s) / min(append_s), 3),
                    "verify_readings_per_s_best": round(total / min(verify_s)),
                }
            )
    if args.json:
        print(
            json.dumps({"readings": total, "readings_per_envelope": args.readings, "runs": results}, indent=2)
        )
    else:
        print(
            f"{total} readings in {args.envelopes} envelopes of {args.readings}, best/median of {args.repeat}"
        )
        for r in results:
            print(
                f"batch {r['envelopes_per_transaction']:>3}: append {r['append_readings_per_s_best']:>9,}/s"
                f" (median {r['append_readings_per_s_median']:,};"
                f" {r['append_readings_per_cpu_s_best']:,}/CPU-s),"
                f" raw SQLite {r['raw_sqlite_readings_per_s_best']:,}/s,"
                f" ratio {r['ratio_best']}; verify {r['verify_readings_per_s_best']:,}/s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

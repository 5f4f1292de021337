"""Audit-entry append throughput: group-committed vs one transaction per entry, SQLite, one run.

    .venv/bin/python -m benchmarks.audit_append [--entries 2000] [--group 1 --group 32 --group 256]
                                                [--signatures 200] [--repeat 3] [--data DIR] [--json]

"append": ``AuditEntry`` values of realistic record changes (setpoint modify, old and new value,
reason, clock sync state from a fixed probe) through ``AuditTrail`` into a fresh ``ledger.db``:
``--group`` entries per transaction (``record_entries``, one commit and fsync per group; 1 = one
per entry via ``record_change``). "raw": the same canonical JSON payloads ``executemany``-inserted
into a table shaped like the ledger's ``audit`` table (leaf, payload), same WAL and
``synchronous=FULL``, same rows per commit: the SQLite floor. "e-sign": ``sign_record`` plus a
``signature`` leaf per signature with the site key (Ed25519 and hybrid), one transaction each,
without the password hash (argon2id costs about 50 ms by design and is not what is measured).
Runs alternate in one thread; best and median of ``--repeat`` (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aseptic.audit import AuditEntry, AuditTrail, fixed_clock_sync, sign_record
from aseptic.clock import SimClock
from aseptic.crypto import ED25519, ED25519_ML_DSA_65, SigningKey
from aseptic.ledger import LeafKind, Ledger, canonical_json

START = datetime(2026, 1, 1, tzinfo=UTC)
SYNC = fixed_clock_sync("synchronized")


def make_entries(count: int) -> list[AuditEntry]:
    return [
        AuditEntry(
            record=f"setpoint:fermenter-01/temp_sp/{i % 40}",
            change="modify",  # type: ignore[arg-type]  # converted in __post_init__
            old=36.0 + (i % 10) / 10,
            new=36.05 + (i % 10) / 10,
            who=f"op.user{i % 7}",
            when=START,
            clock_sync="synchronized",
            why=f"deviation DV-{i:05d}: temperature setpoint trimmed per SOP-117",
            system="site-01",
        )
        for i in range(count)
    ]


def run_append(directory: Path, entries: list[AuditEntry], group: int) -> float:
    key = SigningKey.generate(ED25519)
    clock = SimClock(START)
    with Ledger.open(directory, site_key=key, clock=clock) as ledger:
        trail = AuditTrail(ledger, clock=clock, system="site-01", clock_sync=SYNC)
        started = time.perf_counter()
        if group == 1:
            for e in entries:
                trail.record_change(e.record, e.change, old=e.old, new=e.new, who=e.who, why=e.why)
        else:
            for i in range(0, len(entries), group):
                trail.record_entries(entries[i : i + group])
        return time.perf_counter() - started


def run_raw(directory: Path, entries: list[AuditEntry], group: int) -> float:
    payloads = [canonical_json(e.to_payload()) for e in entries]
    conn = sqlite3.connect(directory / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE audit (leaf INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    started = time.perf_counter()
    for i in range(0, len(payloads), group):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO audit VALUES (?, ?)", enumerate(payloads[i : i + group], start=i))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def run_esign(directory: Path, count: int, algorithm: str) -> float:
    key = SigningKey.generate(algorithm)
    clock = SimClock(START)
    record = {"batch": "B-1", "result": "pass", "assay_pct": 99.1}
    with Ledger.open(directory, site_key=key, clock=clock) as ledger:
        started = time.perf_counter()
        for i in range(count):
            signature = sign_record(
                record=f"batch-record:B-{i}",
                content=record,
                signer="qa.anna",
                printed_name="Anna Q. Approver",
                meaning="approved",
                when=START,
                clock_sync="synchronized",
                factors=("password",),
                session="s",
                system="site-01",
                site_key=key,
            )
            ledger.append_entry(LeafKind.SIGNATURE, signature.to_payload())
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--group", type=int, action="append")
    parser.add_argument("--signatures", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, help="Directory for the ledgers (default: a temporary one).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    groups = args.group or [1, 32, 256]
    entries = make_entries(args.entries)
    results: dict[str, Any] = {"entries": args.entries, "groups": {}, "esign": {}}
    with tempfile.TemporaryDirectory(dir=args.data) as tmp:
        root = Path(tmp)
        for group in groups:
            append, raw = [], []
            for r in range(args.repeat):
                append.append(args.entries / run_append(root / f"a{group}-{r}", entries, group))
                (root / f"r{group}-{r}").mkdir()
                raw.append(args.entries / run_raw(root / f"r{group}-{r}", entries, group))
            results["groups"][group] = {
                "append_best": max(append),
                "append_median": statistics.median(append),
                "raw_best": max(raw),
                "raw_median": statistics.median(raw),
                "ratio_best": max(append) / max(raw),
            }
        for algorithm in (ED25519, ED25519_ML_DSA_65):
            rates = [
                args.signatures / run_esign(root / f"s{algorithm}-{r}", args.signatures, algorithm)
                for r in range(args.repeat)
            ]
            results["esign"][algorithm] = {"best": max(rates), "median": statistics.median(rates)}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.entries} audit entries, best / median of {args.repeat}")
    print(f"{'per commit':>10} | {'append entries/s':>20} | {'raw SQLite entries/s':>22} | ratio")
    for group, r in results["groups"].items():
        print(
            f"{group:>10} | {r['append_best']:>9,.0f} / {r['append_median']:>8,.0f} |"
            f" {r['raw_best']:>10,.0f} / {r['raw_median']:>9,.0f} | {r['ratio_best']:.2f}"
        )
    for algorithm, r in results["esign"].items():
        print(f"e-sign + signature leaf, {algorithm}: {r['best']:,.0f} / {r['median']:,.0f} signatures/s")


if __name__ == "__main__":
    main()

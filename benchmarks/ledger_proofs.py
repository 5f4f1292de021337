"""Proof and verify times on big logs: inclusion proofs at 1M and 10M leaves, full verify per million.

    .venv/bin/python -m benchmarks.ledger_proofs [--sizes 1000000 --sizes 10000000] [--proofs 2000]
                                                 [--verify-leaves 1000000] [--data DIR] [--json]

Building: the big logs are made directly in ``ledger.db`` (schema from ``Ledger.open``), not
through ``Ledger.append_*``: leaf hashes of synthetic ``finding`` entries are computed in Python
and inserted with one ``executemany`` per 200,000 rows in a single transaction; the
``finding`` payload rows are written too for the verify log, not for the proof logs (a proof reads
only ``leaves``). A checkpoint of the whole log is signed with the site key at the end.

Measured, in one run, per size:
- ``node cache``: one pass of ``LogReader.open(node_cache=True)`` building ``state.db``'s
  ``ledger_nodes`` (every perfect subtree of 64 leaves or more), reported once;
- ``proof (cached)``: ``LogReader.inclusion_proof(i, n)`` for ``--proofs`` random leaves, each proof
  checked with ``verify_inclusion`` against the signed root (check time excluded), median and p99;
- ``proof (baseline)``: ``Ledger.inclusion_proof`` as it was (reads the leaf hashes under each
  subtree of the path: O(n)), a few random leaves, median;
- ``verify``: ``verify_ledger`` of a ``--verify-leaves`` log with its payload rows and checkpoint.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import (
    Checkpoint,
    LeafKind,
    Ledger,
    LogReader,
    canonical_json,
    hash_entry,
    verify_inclusion,
    verify_ledger,
)
from aseptic.ledger._tree import Frontier

START = datetime(2026, 1, 1, tzinfo=UTC)
CHUNK = 200_000


def build_log(data_dir: Path, leaves: int, *, with_rows: bool) -> tuple[SigningKey, Checkpoint, float]:
    """A log of ``leaves`` finding leaves inserted in bulk; its signed checkpoint and build seconds."""
    key = SigningKey.generate()
    clock = SimClock(START)
    with Ledger.open(data_dir, site_key=key, clock=clock):
        pass  # schema, site.pub
    started = time.perf_counter()
    conn = sqlite3.connect(data_dir / "ledger.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # building only: durability is not what is measured
    frontier = Frontier()
    conn.execute("BEGIN")
    for start in range(0, leaves, CHUNK):
        rows, payloads = [], []
        for index in range(start, min(start + CHUNK, leaves)):
            payload = canonical_json({"detector": "bench", "n": index, "score": index % 97})
            leaf_hash = hash_entry(LeafKind.FINDING, payload)
            frontier.append(leaf_hash)
            rows.append((index, "finding", leaf_hash))
            if with_rows:
                payloads.append((index, payload))
        conn.executemany("INSERT INTO leaves VALUES (?, ?, ?)", rows)
        if with_rows:
            conn.executemany("INSERT INTO findings VALUES (?, ?)", payloads)
    checkpoint = Checkpoint.sign(origin="site-01", size=leaves, root=frontier.root, time=START, key=key)
    conn.execute(
        "INSERT INTO checkpoints (origin, size, root, time, key_id, algorithm, body, signature)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root,
            "2026-01-01T00:00:00.000000Z",
            checkpoint.key_id,
            checkpoint.algorithm,
            checkpoint.body,
            checkpoint.signature,
        ),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return key, checkpoint, time.perf_counter() - started


def measure_proofs(
    data_dir: Path, key: SigningKey, checkpoint: Checkpoint, proofs: int, baseline: int
) -> dict[str, Any]:
    size = checkpoint.size
    rng = random.Random(size)
    started = time.perf_counter()
    with LogReader.open(data_dir, node_cache=True):
        pass
    cache_s = time.perf_counter() - started
    timings: list[float] = []
    cpu: list[float] = []
    with LogReader.open(data_dir, node_cache=True) as reader:
        for _ in range(proofs):
            index = rng.randrange(size)
            t0, c0 = time.perf_counter(), time.thread_time()
            proof = reader.inclusion_proof(index, size)
            timings.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            verify_inclusion(reader.leaf_hash(index), index, size, proof, checkpoint.root)
    base: list[float] = []
    base_cpu: list[float] = []
    with Ledger.open(data_dir, site_key=key, clock=SimClock(START), create=False) as ledger:
        for _ in range(baseline):
            index = rng.randrange(size)
            t0, c0 = time.perf_counter(), time.thread_time()
            proof = ledger.inclusion_proof(index, size)
            base.append(time.perf_counter() - t0)
            base_cpu.append(time.thread_time() - c0)
            verify_inclusion(ledger.leaf_hash(index), index, size, proof, checkpoint.root)
    timings.sort()
    return {
        "leaves": size,
        "node_cache_build_s": round(cache_s, 1),
        "proof_cached_median_ms": round(statistics.median(timings) * 1000, 3),
        "proof_cached_p99_ms": round(timings[int(len(timings) * 0.99) - 1] * 1000, 3),
        "proof_cached_cpu_median_ms": round(statistics.median(cpu) * 1000, 3),
        "proof_baseline_median_ms": round(statistics.median(base) * 1000, 1) if base else None,
        "proof_baseline_cpu_median_ms": round(statistics.median(base_cpu) * 1000, 1) if base else None,
        "proofs": proofs,
        "baseline_proofs": len(base),
        "file_mb": round((data_dir / "ledger.db").stat().st_size / 1e6),
        "state_mb": round((data_dir / "state.db").stat().st_size / 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, action="append", default=None)
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--baseline-proofs", type=int, default=5)
    parser.add_argument("--verify-leaves", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=None, help="Work directory (default: a temporary one).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = args.sizes or [1_000_000, 10_000_000]
    results: dict[str, Any] = {"proofs": [], "verify": None}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.data if args.data is not None else Path(tmp)
        for size in sizes:
            data_dir = work / f"proofs-{size}"
            key, checkpoint, build_s = build_log(data_dir, size, with_rows=False)
            row = measure_proofs(data_dir, key, checkpoint, args.proofs, args.baseline_proofs)
            row["build_s"] = round(build_s, 1)
            results["proofs"].append(row)
            if not args.json:
                print(json.dumps(row), flush=True)
        if args.verify_leaves:
            data_dir = work / "verify"
            key, checkpoint, build_s = build_log(data_dir, args.verify_leaves, with_rows=True)
            started, cpu = time.perf_counter(), time.process_time()
            report = verify_ledger(data_dir, key.public)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert report.size == args.verify_leaves and report.checkpoints == 1
            results["verify"] = {
                "leaves": args.verify_leaves,
                "build_s": round(build_s, 1),
                "verify_s": round(wall, 1),
                "verify_cpu_s": round(cpu, 1),
                "verify_s_per_million": round(wall / (args.verify_leaves / 1e6), 1),
            }
            if not args.json:
                print(json.dumps(results["verify"]), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

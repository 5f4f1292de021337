"""Ingest throughput: verified and logged readings per second on one core, beside raw SQLite.

    .venv/bin/python -m benchmarks.ingest [--envelopes 400] [--readings 250] [--batch 40] [--repeat 3]
                                          [--profile] [--json]

"aseptic": raw envelope bytes through ``Ingestor`` (size check, decode, key lookup, Ed25519 verify,
sequence and chain, clock skew, value ranges) into ``aseptic.ledger.Ledger`` (leaf hash, envelope
row, reading rows, Merkle frontier) in an embedded SQLite ``ledger.db``, ``--batch`` envelopes per
transaction. "raw SQLite": the very same reading rows, built beforehand, ``executemany``-inserted
into a table like the ledger's ``readings`` (same columns, primary key and index; same WAL and
``synchronous=FULL``), one transaction per as many rows. Both run in this process, one thread,
alternating, each ``--repeat`` times; the best run of each is reported (the machine is shared).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
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
from aseptic.config import TelemetrySettings
from aseptic.crypto import SigningKey
from aseptic.ledger import Ledger
from aseptic.telemetry import EdgeSigner, Envelope, Ingestor, IngestVerifier, Quality, Quarantine, Reading
from aseptic.twin.tags import TAGS

START = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = "collector-01"

_RAW_DDL = """
CREATE TABLE readings (
    leaf INTEGER NOT NULL,
    position INTEGER NOT NULL,
    tag TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    value REAL,
    quality INTEGER NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (leaf, position)
) WITHOUT ROWID;
CREATE INDEX readings_by_tag_time ON readings(tag, time_us);
"""


def make_envelopes(key: SigningKey, count: int, per_envelope: int) -> list[bytes]:
    """``count`` consecutive envelopes of in-span readings sampled from the whole tag catalogue."""
    rng = random.Random(0)
    signer = EdgeSigner(SOURCE, key)
    out = []
    sample = 0
    for _ in range(count):
        readings = []
        for _ in range(per_envelope):
            spec = TAGS[sample % len(TAGS)]
            when = START + timedelta(seconds=12 * (sample // len(TAGS)))
            value = rng.uniform(spec.low, spec.high)
            readings.append(Reading(spec.name, when, value, Quality.GOOD, f"fermenter-01/{spec.device}"))
            sample += 1
        out.append(signer.seal(readings).to_bytes())
    return out


def run_aseptic(workdir: Path, key: SigningKey, messages: list[bytes], batch: int) -> tuple[float, float]:
    """Wall and CPU seconds to ingest ``messages`` into a fresh ledger."""
    clock = SimClock(START + timedelta(days=365))
    settings = TelemetrySettings()
    ledger = Ledger.open(workdir, site_key=SigningKey.generate(), clock=clock)
    try:
        verifier = IngestVerifier({SOURCE: key.public}, clock=clock, settings=settings)
        quarantine = Quarantine.open(workdir, clock=clock, max_stored_bytes=settings.max_envelope_bytes)
        ingestor = Ingestor(verifier, ledger, quarantine)
        started, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(messages), batch):
            with ledger.batch():
                for raw in messages[at : at + batch]:
                    ingestor.ingest(raw)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if ingestor.counters.rejected or ingestor.counters.envelopes != len(messages):
            raise SystemExit(f"benchmark input was rejected: {ingestor.counters}")
        if ledger.size != len(messages):
            raise SystemExit(f"the ledger holds {ledger.size} leaves, expected {len(messages)}")
        return elapsed, cpu
    finally:
        ledger.close()


def reading_rows(messages: list[bytes]) -> list[list[tuple[Any, ...]]]:
    """The ledger's reading rows of each envelope (built outside the timed part of the baseline)."""
    epoch, one_us = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
    return [
        [
            (leaf, position, r.tag, (r.time - epoch) // one_us, r.value, int(r.quality), r.source)
            for position, r in enumerate(Envelope.from_bytes(raw).readings)
        ]
        for leaf, raw in enumerate(messages)
    ]


def run_raw(workdir: Path, rows: list[list[tuple[Any, ...]]], batch: int) -> tuple[float, float]:
    """Wall and CPU seconds to ``executemany`` the same rows into an equivalent table, ``batch`` envelopes
    a commit."""
    conn = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_RAW_DDL)
        started, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)",
                [r for env in rows[at : at + batch] for r in env],
            )
            conn.execute("COMMIT")
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        conn.close()


def stage_costs(key: SigningKey, messages: list[bytes]) -> dict[str, float]:
    """Microseconds per envelope of each stage of the aseptic side alone (best of 5, CPU time)."""
    clock = SimClock(START + timedelta(days=365))

    def decode() -> None:
        for raw in messages:
            Envelope.from_bytes(raw)

    def verify_signatures(decoded: list[Envelope]) -> None:
        for envelope in decoded:
            key.public.verify(envelope.signature.signature, envelope.signing_message, what="envelope")

    def verify_all() -> None:
        verifier = IngestVerifier({SOURCE: key.public}, clock=clock)
        for raw in messages:
            verifier.verify(raw)

    def build_readings(decoded: list[Envelope]) -> None:
        for envelope in decoded:
            _ = envelope.readings

    def best_us(work: Callable[[list[Envelope]], None], *, fresh: bool = False) -> float:
        """``work`` timed alone; ``fresh``: on newly decoded envelopes (decoding not timed)."""
        best = float("inf")
        for _ in range(5):
            decoded = [Envelope.from_bytes(raw) for raw in messages] if fresh else []
            started = time.process_time()
            work(decoded)
            best = min(best, time.process_time() - started)
        return best / len(messages) * 1e6

    return {
        "decode_and_merkle_us": best_us(lambda _: decode()),
        "ed25519_verify_us": best_us(verify_signatures, fresh=True),
        "verify_all_checks_us": best_us(lambda _: verify_all()),
        "readings_objects_us": best_us(build_readings, fresh=True),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envelopes", type=int, default=400)
    parser.add_argument("--readings", type=int, default=250, help="readings per envelope")
    parser.add_argument("--batch", type=int, default=40, help="envelopes per ledger transaction")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one aseptic run, top 25 by own time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    key = SigningKey.generate()
    messages = make_envelopes(key, args.envelopes, args.readings)
    rows = reading_rows(messages)
    total = args.envelopes * args.readings
    aseptic_s: list[tuple[float, float]] = []
    raw_s: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="aseptic-bench-") as tmp:
        for run in range(args.repeat):
            work = Path(tmp) / f"run-{run}"
            (work / "a").mkdir(parents=True)
            (work / "b").mkdir()
            aseptic_s.append(run_aseptic(work / "a", key, messages, args.batch))
            raw_s.append(run_raw(work / "b", rows, args.batch))
        if args.profile:
            profile = cProfile.Profile()
            (Path(tmp) / "profile").mkdir()
            profile.runcall(run_aseptic, Path(tmp) / "profile", key, messages, args.batch)
            pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    aseptic_rate, raw_rate = total / min(w for w, _ in aseptic_s), total / min(w for w, _ in raw_s)
    aseptic_cpu_rate, raw_cpu_rate = total / min(c for _, c in aseptic_s), total / min(c for _, c in raw_s)
    result = {
        "readings": total,
        "envelopes": args.envelopes,
        "readings_per_envelope": args.readings,
        "envelopes_per_transaction": args.batch,
        "envelope_bytes": len(messages[0]),
        "aseptic_readings_per_s": round(aseptic_rate),
        "raw_sqlite_readings_per_s": round(raw_rate),
        "ratio": round(aseptic_rate / raw_rate, 3),
        "aseptic_median_readings_per_s": round(total / statistics.median(w for w, _ in aseptic_s)),
        "raw_sqlite_median_readings_per_s": round(total / statistics.median(w for w, _ in raw_s)),
        "aseptic_readings_per_cpu_s": round(aseptic_cpu_rate),
        "raw_sqlite_readings_per_cpu_s": round(raw_cpu_rate),
        "cpu_ratio": round(aseptic_cpu_rate / raw_cpu_rate, 3),
        "aseptic_runs_wall_cpu_s": [[round(w, 3), round(c, 3)] for w, c in aseptic_s],
        "raw_runs_wall_cpu_s": [[round(w, 3), round(c, 3)] for w, c in raw_s],
        "stages_us_per_envelope": {k: round(v, 1) for k, v in stage_costs(key, messages).items()},
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"ingest: {total} readings, {args.envelopes} envelopes of {args.readings} ({len(messages[0])} bytes)"
    )
    for name, wall, cpu in (
        ("aseptic (decode, verify, log, store)", aseptic_rate, aseptic_cpu_rate),
        ("raw SQLite executemany, same rows", raw_rate, raw_cpu_rate),
    ):
        print(f"  {name:<38} {wall:>9,.0f} readings/s wall {cpu:>9,.0f} per CPU second")
    ratios = aseptic_rate / raw_rate, aseptic_cpu_rate / raw_cpu_rate
    print(f"  ratio: {ratios[0]:.1%} wall, {ratios[1]:.1%} CPU (best runs)")
    median = result["aseptic_median_readings_per_s"], result["raw_sqlite_median_readings_per_s"]
    print(f"  medians: {median[0]:,} and {median[1]:,} readings/s wall")
    print("  goals: >= 100,000 readings/s and >= 25% of raw")
    print("  stages alone, us per envelope (best of 5, CPU time):")
    for stage, us in result["stages_us_per_envelope"].items():
        print(f"  {stage}: {us:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

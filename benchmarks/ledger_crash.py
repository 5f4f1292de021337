"""Crash test: kill an ingest process with SIGKILL at random moments; count acknowledged readings lost.

    .venv/bin/python -m benchmarks.ledger_crash [--runs 50] [--seed 1] [--data DIR] [--json]

The child (``--child DIR``) is the embedded chain of custody without detection: an edge signer
seals envelopes of 50 readings, the ingest verifier checks them, the ledger logs them in groups of
1-8 envelopes per transaction (``Ledger.batch()``), and a checkpoint is signed every ~20 envelopes.
Only *after* a group's transaction commits does the child print ``ack <first>-<last> <readings>``
on its stdout (a pipe to the parent). The parent kills it with SIGKILL at a random moment (from
before its first ack to well into the stream), then checks from the files alone:

- every acknowledged envelope sequence is in ``ledger.db`` with all its readings (lost: goal 0);
- ``verify_ledger`` (``aseptic ledger verify --require-signatures``) passes (goal: always);
- the next run re-opens the same data directory (``Ledger.open``: frontier restored, checked
  against the latest signed checkpoint) and appends on: a restart that fails is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SOURCE = "collector-01"
PER_ENVELOPE = 50


def child(data_dir: Path, seed: int) -> None:
    """The ingest process: log envelopes forever, acknowledging each committed group on stdout."""
    from datetime import timedelta

    from aseptic.clock import WallClock
    from aseptic.crypto import SITE_KEY, KeyStore
    from aseptic.ledger import Ledger
    from aseptic.telemetry import (
        ChainHead,
        Collector,
        EdgeSigner,
        Envelope,
        Ingestor,
        IngestVerifier,
        Quality,
        Quarantine,
        Reading,
    )

    clock = WallClock()
    keys = KeyStore.open(data_dir)
    site_key, collector_key = keys.load_or_create(SITE_KEY), keys.load_or_create(SOURCE)
    ledger = Ledger.open(data_dir, site_key=site_key, clock=clock)
    if not ledger.logged_keys().get(SOURCE):
        ledger.append_key(SOURCE, collector_key.public)
    head = ledger.chain_heads().get(SOURCE)
    sequence, digest = head if head is not None else (0, bytes(32))
    heads = {SOURCE: ChainHead(sequence, digest)} if head is not None else {}
    verifier = IngestVerifier({SOURCE: collector_key.public}, clock=clock, heads=heads)
    quarantine = Quarantine.open(data_dir, clock=clock, max_stored_bytes=1 << 20)
    ingestor = Ingestor(verifier, ledger, quarantine)
    signer = EdgeSigner(SOURCE, collector_key, sequence=sequence, previous_digest=digest)
    collector = Collector(signer, readings_per_envelope=PER_ENVELOPE)
    rng = random.Random(seed)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    since_checkpoint = 0
    while True:
        group = rng.randint(1, 8)
        sealed: list[Envelope] = []
        now = clock.now()
        added = 0
        while len(sealed) < group:
            added += 1  # one instant per reading: two values of one tag at one instant are refused
            reading = Reading(
                "temperature_k",
                now - timedelta(microseconds=added),
                298.0 + rng.random(),
                Quality.GOOD,
                "fermenter-01/TIC-101",
            )
            envelope = collector.add(reading)
            if envelope is not None:
                sealed.append(envelope)
        with ledger.batch():
            for envelope in sealed:
                result = ingestor.ingest(envelope.to_bytes())
                if not isinstance(result, Envelope):
                    raise SystemExit(f"envelope {envelope.sequence} was not accepted: {result}")
        # Committed (fsync'd): only now is the group acknowledged.
        readings = sum(e.reading_count for e in sealed)
        out.write(f"ack {sealed[0].sequence}-{sealed[-1].sequence} {readings}\n")
        out.flush()
        since_checkpoint += group
        if since_checkpoint >= 20:
            ledger.checkpoint()
            since_checkpoint = 0


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _stored(data_dir: Path) -> dict[int, int]:
    """Envelope sequence -> readings rows stored, from ledger.db (read-only)."""
    uri = (data_dir / "ledger.db").resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute(
            "SELECT e.sequence, (SELECT count(*) FROM readings r WHERE r.leaf = e.leaf)"
            " FROM envelopes e WHERE e.source = ?",
            (SOURCE,),
        ).fetchall()
    finally:
        conn.close()
    return {int(sequence): int(count) for sequence, count in rows}


def run_once(data_dir: Path, rng: random.Random, seed: int) -> dict[str, Any]:
    """Start the child, kill it at a random moment, then check what it acknowledged."""
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.ledger_crash", "--child", str(data_dir), "--seed", str(seed)],
        cwd=root,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: dict[int, int] = {}  # sequence -> readings in its envelope (all full: PER_ENVELOPE)
    ready = threading.Event()

    def read_acks() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("ready"):
                ready.set()
            elif line.startswith("ack "):
                span, _ = line.split()[1:3]
                first, last = (int(x) for x in span.split("-"))
                for sequence in range(first, last + 1):
                    acked[sequence] = PER_ENVELOPE

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    if rng.random() < 0.1:
        # Sometimes during start-up (keys, Ledger.open restoring and checking the frontier).
        time.sleep(rng.uniform(0.0, 1.0))
    else:
        ready.wait(timeout=120)
        # Somewhere from "just started ingesting" to "well into the stream".
        time.sleep(rng.uniform(0.0, 0.8))
    died = process.poll()  # not None: the child stopped by itself (a failed restart)
    if died is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    reader.join(timeout=10)
    stderr = process.stderr.read() if process.stderr else ""
    started = died is None
    stored = _stored(data_dir)
    lost_envelopes = [s for s in acked if stored.get(s) is None]
    lost_readings = sum(acked[s] - stored.get(s, 0) for s in acked)
    verified, why = _verify(data_dir)
    return {
        "started": started,
        "acked_envelopes": len(acked),
        "acked_readings": sum(acked.values()),
        "lost_envelopes": len(lost_envelopes),
        "lost_readings": lost_readings,
        "verified": verified,
        "why": why,
        "killed_before_ready": not ready.is_set(),
        "child_error": stderr.strip().splitlines()[-1] if stderr.strip() and not started else "",
    }


def _verify(data_dir: Path) -> tuple[bool, str]:
    from aseptic.crypto import read_public_key
    from aseptic.errors import AsepticError
    from aseptic.ledger import verify_ledger

    try:
        verify_ledger(data_dir, read_public_key(data_dir / "site.pub"), require_signatures=True)
    except AsepticError as exc:
        return False, str(exc)
    return True, ""


def crash_test(runs: int, seed: int, data: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    data_dir = data / "crash-data"
    results = [run_once(data_dir, rng, seed * 1000 + i) for i in range(runs)]
    return {
        "runs": runs,
        "restarts_failed": sum(1 for r in results if not r["started"]),
        "acked_readings": sum(r["acked_readings"] for r in results),
        "lost_readings": sum(r["lost_readings"] for r in results),
        "lost_envelopes": sum(r["lost_envelopes"] for r in results),
        "verified_after_kill": sum(1 for r in results if r["verified"]),
        "failures": [r for r in results if not r["verified"] or r["lost_readings"] or not r["started"]][:5],
        "kills_before_first_ack": sum(1 for r in results if r["acked_envelopes"] == 0),
        "kills_during_startup": sum(1 for r in results if r["killed_before_ready"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="Work directory (default: a temporary one).")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.seed)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data if args.data is not None else Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        result = crash_test(args.runs, args.seed, data)
        result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"runs                  {result['runs']} (SIGKILL at a random moment, same data directory)")
    print(f"acknowledged readings {result['acked_readings']}")
    print(f"lost (acknowledged)   {result['lost_readings']} readings, {result['lost_envelopes']} envelopes")
    print(f"verified after kill   {result['verified_after_kill']} of {result['runs']}")
    print(f"restarts failed       {result['restarts_failed']}")
    startup = result["kills_during_startup"]
    print(f"kills before 1st ack  {result['kills_before_first_ack']} ({startup} during start-up)")
    for failure in result["failures"]:
        print(f"  failure: {failure}")


if __name__ == "__main__":
    main()

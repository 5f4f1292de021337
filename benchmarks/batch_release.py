"""What the batch release routes cost as the log grows, beside the log verification they rest on.

    .venv/bin/python -m benchmarks.batch_release [--batches 20] [--readings 600] [--repeat 3]
                                                 [--data DIR] [--json]

A throwaway site: ``--batches`` completed batches logged by the real custody pipeline, each with
``--readings`` readings (three tags), one finding in the last; a qa_reviewer. The API runs in this
process (FastAPI's TestClient: no socket, so the numbers are the server's work). Timed, median of
``--repeat``: the baseline ``verify_ledger`` of the whole log (what every batch view re-runs, ADR
0240), ``GET /api/batches`` (assembles every record), ``GET /api/batches/{last}`` (one record, the
assessments and the verification), one review signature (password + TOTP, the first of the session),
and ``GET .../package`` (HTML + PDF report, bundle export with its checkpoint, zip).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from aseptic.api import create_app
from aseptic.audit import ledger_sink
from aseptic.clock import SimClock
from aseptic.config import settings_from_mapping
from aseptic.crypto import PASSPHRASE_ENV, SITE_KEY, KeyStore, read_public_key
from aseptic.ledger import Ledger, verify_ledger
from aseptic.service import CustodyPipeline
from aseptic.telemetry import Quality, Reading
from aseptic.trust import IdentityStore

PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway user in a temporary directory
TAGS = (("temperature_k", "TIC-101", 298.0), ("ph", "AIC-102", 6.5), ("sugar_feed_l_per_h", "FIC-104", 10.0))


def build(data_dir: Path, batches: int, readings: int) -> tuple[SimClock, str]:
    per_tag = max(readings // len(TAGS), 2)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=batches * per_tag + 60)
    clock = SimClock(t0 + timedelta(minutes=batches * per_tag + 30))
    settings = settings_from_mapping({"telemetry": {"readings_per_envelope": 60}})
    pipeline = CustodyPipeline(data_dir, settings, clock, collector_id="collector-01")
    for number in range(batches):
        batch = f"B-{number:04d}"
        pipeline.start_batch(batch)
        start = t0 + timedelta(minutes=number * per_tag)
        for i in range(per_tag):
            for tag, device, value in TAGS:
                reading = Reading(
                    tag, start + timedelta(minutes=i), value, Quality.GOOD, f"fermenter-01/{device}"
                )
                pipeline.add_reading(reading)
        if number == batches - 1:
            pipeline.ledger.append_finding(
                {
                    "batch_id": batch,
                    "detector": "cusum",
                    "kind": "finding",
                    "technique": "T0832",
                    "contributions": [],
                }
            )
        pipeline.end_batch()
    pipeline.close()
    site_key = KeyStore.open(data_dir).load_or_create(SITE_KEY)
    with Ledger.open(data_dir, site_key=site_key, clock=clock, create=False) as ledger:
        with IdentityStore.open(data_dir, audit=ledger_sink(ledger)) as store:
            secret = store.add_user(
                "rita", ("qa_reviewer",), (), PASSWORD, actor="admin", now=clock.now()
            ).secret
            store.set_full_name("rita", "Rita Reviewer", actor="admin", now=clock.now())
        ledger.checkpoint()
    KeyStore.open(data_dir).load_or_create("session")
    return clock, secret


def timed(call: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000.0


def run(data_dir: Path, batches: int, readings: int, repeat: int) -> dict[str, Any]:
    clock, secret = build(data_dir, batches, readings)
    public = read_public_key(data_dir / "site.pub")
    last = f"B-{batches - 1:04d}"
    out: dict[str, Any] = {"batches": batches, "readings_per_batch": readings}
    out["baseline_verify_ledger_ms"] = timed(lambda: verify_ledger(data_dir, public), repeat)
    with TestClient(create_app(data_dir, settings_from_mapping({}), clock)) as client:
        clock.advance(31)
        code = pyotp.TOTP(secret).at(clock.now())
        token = client.post("/api/login", json={"username": "rita", "password": PASSWORD, "totp_code": code})
        headers = {"Authorization": f"Bearer {token.json()['token']}"}

        def get(path: str) -> None:
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")

        out["list_ms"] = timed(lambda: get("/api/batches"), repeat)
        out["batch_view_ms"] = timed(lambda: get(f"/api/batches/{last}"), repeat)
        clock.advance(31)
        body = {"password": PASSWORD, "totp_code": pyotp.TOTP(secret).at(clock.now())}
        began = time.perf_counter()
        review = client.post(f"/api/batches/{last}/review", json=body, headers=headers)
        out["review_signature_ms"] = (time.perf_counter() - began) * 1000.0
        if review.status_code != 200:
            raise SystemExit(f"review: {review.status_code} {review.text[:300]}")
        out["package_ms"] = timed(lambda: get(f"/api/batches/{last}/package"), repeat)
    with Ledger.open(
        data_dir, site_key=KeyStore.open(data_dir).load_or_create(SITE_KEY), clock=clock
    ) as ledger:
        out["log_size"] = ledger.size
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--readings", type=int, default=600, help="readings per batch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--data", type=Path, help="an empty directory for the site (default: a temporary one)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # A throwaway site: its keys are sealed with a random passphrase that lives only in this process.
    os.environ.setdefault(PASSPHRASE_ENV, secrets.token_hex(16))
    with tempfile.TemporaryDirectory(prefix="aseptic-batch-bench-") as tmp:
        data_dir = (args.data or Path(tmp)) / "data"
        result = run(data_dir, args.batches, args.readings, args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    size, batches, readings = result["log_size"], result["batches"], result["readings_per_batch"]
    print(f"log: {size} leaves, {batches} batches x {readings} readings")
    print(f"baseline verify_ledger (whole log)   {result['baseline_verify_ledger_ms']:9.1f} ms")
    for key, label in (
        ("list_ms", "GET /api/batches"),
        ("batch_view_ms", "GET /api/batches/{id}"),
        ("review_signature_ms", "POST .../review (first signing)"),
        ("package_ms", "GET .../package"),
    ):
        ratio = result[key] / result["baseline_verify_ledger_ms"]
        print(f"{label:36s} {result[key]:9.1f} ms  ({ratio:.2f}x the baseline)")


if __name__ == "__main__":
    main()

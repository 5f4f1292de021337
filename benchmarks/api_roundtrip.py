"""HTTP round trips of the API on loopback: requests per second and latency percentiles.

    .venv/bin/python -m benchmarks.api_roundtrip [--requests 2000] [--json]

``aseptic.api`` served by uvicorn in this process (one server thread, as ``aseptic serve``) over a
fresh data directory; one keep-alive httpx2 client sends the requests one after another. Routes:
``GET /health`` (no auth: the HTTP floor), ``GET /api/whoami`` (token check on the identity
thread), ``GET /api/tags/temperature_k/readings`` (token check, decision, decision log entry, an
empty historian query). Latency is per request, ``perf_counter_ns``, client side.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pyotp
import uvicorn

from aseptic.api import create_app
from aseptic.clock import SimClock
from aseptic.config import Settings
from aseptic.crypto import KeyStore
from aseptic.ledger import Ledger
from aseptic.trust import DecisionLog, IdentityStore

PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway user in a temporary directory


def _site(data_dir: Path, clock: SimClock) -> str:
    # A throwaway temporary site: plaintext keys by explicit opt-in (ADR 0230).
    site_key = KeyStore.open(data_dir, insecure_no_passphrase=True).load_or_create("site")
    with DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock)) as log:
        with IdentityStore.open(data_dir, audit=log) as store:
            token = store.create_enrolment_token(data_dir, clock.now()).read_text().strip()
            store.enrol_administrator(token, "root", PASSWORD, clock.now())
            enrolment = store.add_user(
                "olga", ("operator",), ("fermentation",), PASSWORD, actor="root", now=clock.now()
            )
    return enrolment.secret


def _time(client: httpx2.Client, path: str, count: int, headers: dict[str, str]) -> dict[str, Any]:
    latencies: list[int] = []
    start = time.perf_counter()
    for _ in range(count):
        began = time.perf_counter_ns()
        response = client.get(path, headers=headers)
        latencies.append(time.perf_counter_ns() - began)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text}")
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "path": path,
        "requests": count,
        "per_s": round(count / elapsed),
        "p50_us": round(statistics.median(ordered) / 1000),
        "p99_us": round(ordered[int(0.99 * (len(ordered) - 1))] / 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    clock = SimClock(datetime.now(UTC).replace(microsecond=0))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        secret = _site(data_dir, clock)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        app = create_app(data_dir, Settings(), clock)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                clock.advance(31)
                code = pyotp.TOTP(secret).at(clock.now())
                login = client.post(
                    "/api/login", json={"username": "olga", "password": PASSWORD, "totp_code": code}
                )
                headers = {"Authorization": f"Bearer {login.json()['token']}"}
                rows = [
                    _time(client, path, args.requests, headers)
                    for path in ("/health", "/api/whoami", "/api/tags/temperature_k/readings")
                ]
        finally:
            server.should_exit = True
            thread.join()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['path']:40} {row['per_s']:>7}/s  p50 {row['p50_us']:>6} us  p99 {row['p99_us']:>6} us")


if __name__ == "__main__":
    main()

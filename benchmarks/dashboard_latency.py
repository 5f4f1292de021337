"""Dashboard latency in a real browser: first view of the overview, and update latency while a
writer appends readings to the ledger.

    .venv/bin/python -m benchmarks.dashboard_latency [--views 20] [--updates 60] [--data DIR] [--json]

``aseptic.api`` (with the dashboard) is served by uvicorn in this process over a fresh data
directory (under ``--data``, else a temporary one), with the wall clock; Debian's Chromium
(``/usr/bin/chromium`` or ``$ASEPTIC_CHROMIUM``) is driven by Playwright, signed in once as an
operator.

* First view: a full navigation to ``/#overview`` (static files are ``no-store``: fetched again each
  time), ``performance.now()`` (from navigation start) when the temperature card's trend line is
  first in the DOM, polled per animation frame.
* Update: a writer thread seals one signed envelope (one ``temperature_k`` reading, timestamped
  now) every 0.5-1.5 s (random phase against the page's 1 s poll). The ledger has one writer: the
  service's decision log owns it. So the envelopes go through that same writer: the benchmark wraps
  the ledger the decision log opens, and its writer thread appends the queued envelopes in its next
  group commit, which the writer triggers at once with a read of its own (``GET /api/ledger/status``:
  its decision is logged). The append time is taken when that commit returns; the page records
  ``Date.now()`` when a poll adds the reading to the card's trend (a MutationObserver on the
  card's ``data-last-time``, set after each poll's points are added).
  Latency = shown - appended (same host clock).
* Baseline, same run: the raw API round trip (httpx2, keep-alive, bearer token) of the readings
  request the page makes, over the whole 1 h window (first view) and from the last reading seen
  (each poll).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pyotp
import uvicorn
from playwright.sync_api import sync_playwright

import aseptic.api._service as api_service
from aseptic.api import create_app
from aseptic.clock import WallClock, format_rfc3339
from aseptic.config import Settings
from aseptic.crypto import KeyStore, SigningKey
from aseptic.ledger import Ledger
from aseptic.telemetry import Envelope, Quality, Reading
from aseptic.trust import DecisionLog, IdentityStore

PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway user in a fresh directory
TAG = "temperature_k"
SOURCE = "fermenter-01"
CHROMIUM_FLAGS = ["--headless=new", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


class Collector:
    """Seals envelopes of one reading each, chained by sequence and digest."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.sequence = 0
        self.previous = bytes(32)

    def seal(self, value: float, when: datetime) -> Envelope:
        self.sequence += 1
        envelope = Envelope.seal(
            source=SOURCE,
            sequence=self.sequence,
            previous_digest=self.previous,
            readings=[Reading(TAG, when, value, Quality.GOOD, "TT-101")],
            key=self.key,
        )
        self.previous = envelope.digest
        return envelope


class SharedWriter:
    """The decision log's ledger, wrapped: each group commit also appends the queued envelopes (on
    the writer thread, inside the same transaction) and notes when that commit returned."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.pending: queue.SimpleQueue[tuple[str, Envelope]] = queue.SimpleQueue()
        self.appended: dict[str, float] = {}  # reading time (RFC 3339) -> wall time of the commit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        keys: list[str] = []
        with self._ledger.batch():
            yield
            while True:
                try:
                    key, envelope = self.pending.get_nowait()
                except queue.Empty:
                    break
                self._ledger.append_envelope(envelope, envelope.to_bytes())
                keys.append(key)
        committed = time.time()
        for key in keys:
            self.appended[key] = committed


WRITERS: list[SharedWriter] = []


class _LedgerOpener:
    """Stands in for ``Ledger`` in ``aseptic.api._service``: opens the real one, wrapped."""

    @staticmethod
    def open(*args: Any, **kwargs: Any) -> SharedWriter:
        writer = SharedWriter(Ledger.open(*args, **kwargs))
        WRITERS.append(writer)
        return writer


def _site(data_dir: Path, clock: WallClock, collector: Collector) -> str:
    site_key = KeyStore.open(data_dir).load_or_create("site")
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        ledger.append_key(SOURCE, collector.key.public)
        now = clock.now().timestamp()
        for i in range(30, 0, -1):  # half a minute of history, so the first view has a trend
            envelope = collector.seal(298.0 + 0.01 * i, datetime.fromtimestamp(now - i, UTC))
            ledger.append_envelope(envelope, envelope.to_bytes())
        ledger.checkpoint()
    with DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock)) as log:
        with IdentityStore.open(data_dir, audit=log) as store:
            token = store.create_enrolment_token(data_dir, clock.now()).read_text().strip()
            store.enrol_administrator(token, "root", PASSWORD, clock.now())
            enrolment = store.add_user(
                "olga", ("operator",), ("fermentation",), PASSWORD, actor="root", now=clock.now()
            )
    return enrolment.secret


def _chromium() -> str:
    for candidate in (os.environ.get("ASEPTIC_CHROMIUM"), "/usr/bin/chromium", "/usr/lib/chromium/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    raise SystemExit("Debian's chromium is not installed (apt-get install chromium)")


def _stats_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def _round_trips(base_url: str, token: str, count: int) -> dict[str, dict[str, float]]:
    headers = {"Authorization": f"Bearer {token}"}
    window: list[float] = []
    poll: list[float] = []
    with httpx2.Client(base_url=base_url, timeout=10, headers=headers) as client:
        for _ in range(count):
            began = time.perf_counter()
            full = client.get(f"/api/tags/{TAG}/readings")
            window.append(1000 * (time.perf_counter() - began))
            if full.status_code != 200:
                raise SystemExit(f"readings: {full.status_code} {full.text}")
            last = full.json()["readings"][-1]["time"]
            began = time.perf_counter()
            response = client.get(f"/api/tags/{TAG}/readings?from={quote(last)}")
            poll.append(1000 * (time.perf_counter() - began))
            if response.status_code != 200:
                raise SystemExit(f"readings: {response.status_code} {response.text}")
    return {"window": _stats_ms(window), "poll": _stats_ms(poll)}


_OBSERVE = """() => {
  window.__seen = {};
  const card = document.querySelector('.card[data-tag="temperature_k"]');
  new MutationObserver(() => {
    const now = Date.now();
    for (const p of card.state.points) if (!(p.time in window.__seen)) window.__seen[p.time] = now;
  }).observe(card, { attributes: true, attributeFilter: ["data-last-time"] });
}"""
_DRAWN = (
    """() => document.querySelector('.card[data-tag="temperature_k"] polyline') ? performance.now() : null"""
)


def run(data_root: Path, views: int, updates: int) -> dict[str, Any]:
    clock = WallClock()
    data_dir = data_root / "data"
    keys = KeyStore.open(data_dir)
    collector = Collector(keys.load_or_create("collector-fermenter-01"))
    secret = _site(data_dir, clock, collector)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    api_service.Ledger = _LedgerOpener  # type: ignore[misc,assignment]
    try:
        app = create_app(data_dir, Settings(), clock)
    finally:
        api_service.Ledger = Ledger  # type: ignore[misc]
    writer = WRITERS[-1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base_url = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
            page = browser.new_context(base_url=base_url).new_page()
            page.goto("/")
            page.fill("#username", "olga")
            page.fill("#password", PASSWORD)
            page.fill("#totp", pyotp.TOTP(secret).now())
            page.click("button[type=submit]")
            page.wait_for_selector('.card[data-tag="temperature_k"] polyline', timeout=15_000)
            token = str(page.evaluate("sessionStorage.getItem('aseptic.token')"))

            first: list[float] = []
            for i in range(views):
                page.goto(f"/?view={i}#overview")
                drawn = page.wait_for_function(_DRAWN, polling="raf", timeout=15_000)
                first.append(float(drawn.json_value()))
            result["first_view"] = _stats_ms(first)

            page.evaluate(_OBSERVE)
            enqueued: dict[str, float] = {}
            rng = random.Random(7)
            value = 300.0
            trigger = httpx2.Client(
                base_url=base_url, timeout=10, headers={"Authorization": f"Bearer {token}"}
            )
            with trigger:
                for _ in range(updates):
                    time.sleep(rng.uniform(0.5, 1.5))
                    now = clock.now()
                    value += 0.001
                    key = format_rfc3339(now)
                    enqueued[key] = time.time()
                    writer.pending.put((key, collector.seal(value, now)))
                    # A read by another client: its decision is logged at once, and that group
                    # commit appends the envelope (commits are not left to the page's own polls).
                    if trigger.get("/api/ledger/status").status_code != 200:
                        raise SystemExit("GET /api/ledger/status refused")
                time.sleep(3.0)  # the last reading's poll
            seen: dict[str, float] = page.evaluate("window.__seen")
            from_append = [seen[k] - 1000 * writer.appended[k] for k in enqueued if k in seen]
            from_enqueue = [seen[k] - 1000 * enqueued[k] for k in enqueued if k in seen]
            result["update_from_append"] = _stats_ms(from_append)
            result["update_from_enqueue"] = _stats_ms(from_enqueue)
            result["updates"] = {"appended": len(writer.appended), "shown": len(from_append)}
            browser.close()
        result["api_round_trip"] = _round_trips(base_url, token, max(views, 50))
    finally:
        server.should_exit = True
        thread.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--data", type=Path, default=None, help="where to create the data directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.data) as tmp:
        result = run(Path(tmp), args.views, args.updates)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, row in result.items():
        print(f"{name:22} {row}")


if __name__ == "__main__":
    main()

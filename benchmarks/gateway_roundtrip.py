"""HTTP round trips through the write gateway, over HTTPS with mutual TLS, to a twin OPC UA server.

    .venv/bin/python -m benchmarks.gateway_roundtrip [--requests 200] [--logins 10] [--data DIR] [--json]

Everything on 127.0.0.1 in this process: the twin's OPC UA server (SignAndEncrypt, X.509
identities, real ``Plant``) on its own event loop thread; ``aseptic.api`` served by uvicorn as
``aseptic serve`` runs it (HTTPS from the site CA, client certificates optional, one server thread);
one keep-alive httpx2 client presenting a managed endpoint's certificate sends requests one after
another. Measured, client side (``perf_counter_ns``):

- ``POST /api/login`` (argon2id + TOTP; each login waits for a new TOTP step on a simulated clock);
- ``GET /api/tags/temperature_k/readings`` (token, certificate check, decision, log entry, historian);
- ``POST /api/setpoints/ph_sp`` (all of the above, plus an OPC UA read of the plant's state, the
  write as the plant's writer, a read back, and the audit entry waited for until durable);
- baselines in the same run: ``GET /health`` over the same HTTPS connection (the HTTP+TLS floor), and
  the gateway's own OPC UA write + read back alone (``TwinLink.write``, no HTTP, no decision).

``--data DIR`` keeps the data directories there (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pyotp
import uvicorn

from aseptic.api import PeerCertificateH11, create_app, ensure_server_certificate, server_ssl_context
from aseptic.clock import SimClock, WallClock
from aseptic.config import settings_from_mapping
from aseptic.crypto import KeyStore, PkiDirectory
from aseptic.gateway import TwinLink
from aseptic.ledger import Ledger
from aseptic.service import open_site_ca
from aseptic.trust import DecisionLog, IdentityStore
from aseptic.twin import Plant, ServerOptions, TwinServer

PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway user in a temporary directory


def _site(data_dir: Path, clock: SimClock) -> tuple[str, bytes, bytes]:
    """An operator (TOTP secret) and a managed endpoint's certificate and key."""
    keys = KeyStore.open(data_dir)
    site_key = keys.load_or_create("site")
    ca = open_site_ca(data_dir, "site-01", clock)  # ECDSA P-256, as `aseptic init` makes it (ADR 0380)
    cert, key, fingerprint = ca.issue("Device", "console-01", clock.now())
    with DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock)) as log:
        with IdentityStore.open(data_dir, audit=log) as store:
            token = store.create_enrolment_token(data_dir, clock.now()).read_text().strip()
            store.enrol_administrator(token, "root", PASSWORD, clock.now())
            secret = store.add_user(
                "olga", ("operator",), ("fermentation",), PASSWORD, actor="root", now=clock.now()
            ).secret
            store.add_machine(
                "Device",
                "console-01",
                ("field_device",),
                actor="root",
                now=clock.now(),
                fingerprint=fingerprint,
            )
    return secret, cert, key


def _provision(twin_dir: Path, data_dir: Path) -> None:
    source, target = PkiDirectory.of(twin_dir), PkiDirectory.of(data_dir)
    for directory in (target.own, target.trusted_servers):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for suffix in (".der", ".pem"):
        shutil.copy2(source.own / f"client-aseptic-gateway{suffix}", target.own)
    shutil.copy2(source.own / "server.der", target.trusted_servers)


def _stats(name: str, latencies_ns: list[int], elapsed_s: float) -> dict[str, Any]:
    ordered = sorted(latencies_ns)
    return {
        "what": name,
        "requests": len(ordered),
        "per_s": round(len(ordered) / elapsed_s, 1),
        "p50_ms": round(statistics.median(ordered) / 1e6, 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] / 1e6, 2),
    }


def _time(name: str, count: int, call: Callable[[int], None]) -> dict[str, Any]:
    latencies: list[int] = []
    start = time.perf_counter()
    for i in range(count):
        began = time.perf_counter_ns()
        call(i)
        latencies.append(time.perf_counter_ns() - began)
    return _stats(name, latencies, time.perf_counter() - start)


def _ok(response: httpx2.Response) -> None:
    if response.status_code != 200:
        raise SystemExit(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )


def run(root: Path, requests: int, logins: int) -> list[dict[str, Any]]:
    data_dir, twin_dir = root / "data", root / "twin"
    clock = SimClock(datetime.now(UTC).replace(microsecond=0))
    secret, cert_pem, key_pem = _site(data_dir, clock)
    (root / "console.pem").write_bytes(cert_pem)
    (root / "console.key").write_bytes(key_pem)
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop_thread.start()
    twin = TwinServer(lambda i: Plant(i), twin_dir, ServerOptions(port=0), WallClock())
    asyncio.run_coroutine_threadsafe(twin.start(), loop).result(60)
    asyncio.run_coroutine_threadsafe(twin.publish_sample(), loop).result(60)  # a running batch
    _provision(twin_dir, data_dir)
    settings = settings_from_mapping({"gateway": {"endpoint": twin.endpoint_url}})
    app = create_app(data_dir, settings, clock)
    cert, key = ensure_server_certificate(data_dir, site="site-01", now=datetime.now(UTC))
    context = server_ssl_context(cert, key, data_dir / "site-ca.pem")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http=PeerCertificateH11,
        ssl_context_factory=lambda config, default: context,
    )
    server = uvicorn.Server(config)
    server_thread = threading.Thread(target=server.run, daemon=True)
    server_thread.start()
    while not server.started:
        time.sleep(0.05)
    client_context = ssl.create_default_context(cafile=str(data_dir / "site-ca.pem"))
    client_context.load_cert_chain(str(root / "console.pem"), str(root / "console.key"))
    rows: list[dict[str, Any]] = []
    try:
        with httpx2.Client(base_url=f"https://127.0.0.1:{port}", verify=client_context, timeout=30) as client:
            tokens: list[str] = []

            def login(_: int) -> None:
                clock.advance(31)  # a TOTP code is accepted once per step
                code = pyotp.TOTP(secret).at(clock.now())
                response = client.post(
                    "/api/login", json={"username": "olga", "password": PASSWORD, "totp_code": code}
                )
                _ok(response)
                tokens.append(response.json()["token"])

            rows.append(_time("POST /api/login (argon2id + TOTP)", logins, login))
            client.headers["Authorization"] = f"Bearer {tokens[-1]}"
            rows.append(_time("GET /health (HTTPS floor)", requests, lambda i: _ok(client.get("/health"))))
            rows.append(
                _time(
                    "GET /api/tags/temperature_k/readings",
                    requests,
                    lambda i: _ok(client.get("/api/tags/temperature_k/readings")),
                )
            )

            def write(i: int) -> None:
                value = 6.5 + 0.01 * (i % 20)
                _ok(client.post("/api/setpoints/ph_sp", json={"value": value, "reason": f"benchmark {i}"}))

            rows.append(_time("POST /api/setpoints/ph_sp (gateway)", requests, write))
        link = TwinLink(
            twin.endpoint_url,
            data_dir=data_dir,
            writer="client-aseptic-gateway",
            unit_path="site-01.fermentation.fermenter-01",
            clock=WallClock(),
        )
        with link:
            rows.append(
                _time(
                    "baseline: OPC UA write + read back only",
                    requests,
                    lambda i: link.write("ph_sp", 6.5 + 0.01 * (i % 20)) and None,
                )
            )
    finally:
        server.should_exit = True
        server_thread.join(30)
        asyncio.run_coroutine_threadsafe(twin.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--logins", type=int, default=10)
    parser.add_argument("--data", type=Path, default=None, help="keep the data directories here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=False)
        rows = run(args.data, args.requests, args.logins)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = run(Path(tmp), args.requests, args.logins)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['what']:45} {row['per_s']:>8}/s  p50 {row['p50_ms']:>8} ms  p99 {row['p99_ms']:>8} ms")


if __name__ == "__main__":
    main()

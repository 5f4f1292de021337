"""A real data directory for the HTTP API tests: keys, signed telemetry in the ledger, users."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sqlite3
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.ledger import Ledger
from aseptic.telemetry import Envelope, Quality, Reading
from aseptic.trust import DecisionLog, IdentityStore

PASSWORD = "correct horse battery staple"
# A real "now", so the ledger's checkpoint times and the tokens' times agree with `ledger verify`.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
TAG = "temperature_k"


@dataclass
class Site:
    data_dir: Path
    clock: SimClock
    session_key: SigningKey
    totp: dict[str, str]  # user -> TOTP secret


def seal_readings(data_dir: Path, site_key: SigningKey, clock: SimClock) -> None:
    collector = KeyStore.open(data_dir).load_or_create("collector-fermenter-01")
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        ledger.append_key("fermenter-01", collector.public)
        previous = bytes(32)
        for sequence in range(1, 4):
            readings = [
                Reading(
                    TAG, START - timedelta(minutes=30 - 5 * sequence - i), 298.0 + i, Quality.GOOD, "TT-101"
                )
                for i in range(4)
            ]
            envelope = Envelope.seal(
                source="fermenter-01",
                sequence=sequence,
                previous_digest=previous,
                readings=readings,
                key=collector,
            )
            previous = envelope.digest
            ledger.append_envelope(envelope, envelope.to_bytes())
        ledger.checkpoint()


def build_site(data_dir: Path) -> Site:
    """Keys, a ledger with 12 signed readings of ``TAG``, an administrator and two operators."""
    clock = SimClock(START)
    keys = KeyStore.open(data_dir)
    site_key = keys.load_or_create("site")
    seal_readings(data_dir, site_key, clock)
    totp: dict[str, str] = {}
    with DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock)) as log:
        with IdentityStore.open(data_dir, audit=log) as store:
            token = store.create_enrolment_token(data_dir, clock.now()).read_text().strip()
            totp["root"] = store.enrol_administrator(token, "root", PASSWORD, clock.now()).secret
            for name, areas in (("olga", ("fermentation",)), ("otto", ("purification",))):
                enrolment = store.add_user(
                    name, ("operator",), areas, PASSWORD, actor="root", now=clock.now()
                )
                totp[name] = enrolment.secret
    return Site(data_dir, clock, keys.load_or_create("session"), totp)


# -- the write gateway: a twin OPC UA server on its own thread, the writer identity provisioned ----


class TwinThread:
    """A twin OPC UA server (security on, 127.0.0.1, a free port) served by its own event loop.

    The gateway's calls are blocking (the API's handlers are), so the server cannot share the
    test's loop. ``plant`` is batch 0 (default: the real ``Plant(0)``); batch i is ``Plant(i)``.
    """

    def __init__(self, data_dir: Path, plant: Any = None, **options: Any) -> None:
        from aseptic.clock import WallClock
        from aseptic.twin import Plant, ServerOptions, TwinServer

        self.data_dir = data_dir
        self.plant = plant if plant is not None else Plant(0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        plants = [self.plant]

        def factory(index: int) -> Any:
            while index >= len(plants):
                plants.append(Plant(len(plants)))
            return plants[index]

        self.server = TwinServer(factory, data_dir, ServerOptions(port=0, **options), WallClock())

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    @property
    def url(self) -> str:
        return str(self.server.endpoint_url)

    def publish(self, samples: int = 1) -> None:
        for _ in range(samples):
            self.run(self.server.publish_sample())

    def stop(self) -> None:
        self.run(self.server.stop())

    def __enter__(self) -> TwinThread:
        self._thread.start()
        self.run(self.server.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def provision_writer(twin_dir: Path, data_dir: Path) -> None:
    """Give ``data_dir`` the twin's writer identity and trust the twin's server (as an operator
    would copy them): D/pki/own/client-aseptic-gateway.{der,pem}, D/pki/trusted-servers/."""
    from aseptic.crypto import PkiDirectory

    source, target = PkiDirectory.of(twin_dir), PkiDirectory.of(data_dir)
    for directory in (target.own, target.trusted_servers):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for suffix in (".der", ".pem"):
        name = f"client-aseptic-gateway{suffix}"
        shutil.copy2(source.own / name, target.own / name)
    shutil.copy2(source.own / "server.der", target.trusted_servers / "server.der")


def add_engineer(site: Site, name: str = "erin") -> None:
    """A process engineer (all areas) in ``site``."""
    keys = KeyStore.open(site.data_dir)
    with DecisionLog(
        lambda: Ledger.open(site.data_dir, site_key=keys.load_or_create("site"), clock=site.clock)
    ) as log:
        with IdentityStore.open(site.data_dir, audit=log) as store:
            site.totp[name] = store.add_user(
                name, ("process_engineer",), (), PASSWORD, actor="root", now=site.clock.now()
            ).secret


def ledger_entries(data_dir: Path, entry: str) -> list[dict[str, Any]]:
    """Every decision and audit entry of kind ``entry``, in log order."""
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        rows = conn.execute(
            "SELECT payload FROM (SELECT leaf, payload FROM audit"
            " UNION ALL SELECT leaf, payload FROM decisions)"
            " ORDER BY leaf"
        ).fetchall()
    return [e for e in (json.loads(row[0]) for row in rows) if e.get("entry") == entry]


def copy_site(template: Site, data_dir: Path) -> Site:
    """A copy of ``template``'s data directory (users, keys, ledger): building one costs seconds of
    argon2 and key generation, copying it milliseconds."""
    shutil.copytree(template.data_dir, data_dir)
    return Site(data_dir, SimClock(template.clock.now()), template.session_key, dict(template.totp))


def twin_pki_template(twin_dir: Path) -> Path:
    """A twin data directory with its PKI made (two RSA-2048 keys): copy it per test."""
    from aseptic.twin import bootstrap_pki

    bootstrap_pki(twin_dir, site="site-01", now=datetime.now(UTC))
    return twin_dir


# -- TLS: the site CA, enrolled machines, and `aseptic serve`'s HTTPS stack on a thread -----------


def add_site_ca(site: Site, *, legacy_ed25519: bool = False) -> Path:
    """The site CA (``D/site-ca.pem``), as `aseptic init` makes it: ECDSA P-256 (key store ``tls-ca``
    key, ADR 0380); ``legacy_ed25519``: an Ed25519 CA (``ca`` key) as sites made before it have."""
    from aseptic.service import open_site_ca
    from aseptic.trust import SiteCA

    path = site.data_dir / "site-ca.pem"
    if legacy_ed25519:
        ca = SiteCA.create(KeyStore.open(site.data_dir).load_or_create("ca"), "site-01", site.clock.now())
        path.write_bytes(ca.to_pem())
    else:
        open_site_ca(site.data_dir, "site-01", site.clock)
    return path


def enrol_machine(site: Site, kind: str, name: str, role: str, out_dir: Path) -> tuple[Path, Path]:
    """Issue a client certificate from the site CA and register the device or service."""
    from aseptic.service import open_site_ca

    keys = KeyStore.open(site.data_dir)
    ca = open_site_ca(site.data_dir, "site-01", site.clock)
    cert_pem, key_pem, fingerprint = ca.issue(kind, name, site.clock.now())
    with DecisionLog(
        lambda: Ledger.open(site.data_dir, site_key=keys.load_or_create("site"), clock=site.clock)
    ) as log:
        with IdentityStore.open(site.data_dir, audit=log) as store:
            store.add_machine(
                kind, name, (role,), actor="root", now=site.clock.now(), fingerprint=fingerprint
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert, key = out_dir / f"{name}.pem", out_dir / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    return cert, key


class ServeThread:
    """The API as `aseptic serve` runs it (uvicorn, HTTPS from the site CA, mutual TLS), on a thread,
    on a free loopback port. ``insecure_http=True`` serves plain HTTP instead."""

    def __init__(self, app: Any, data_dir: Path, *, insecure_http: bool = False) -> None:
        import uvicorn

        from aseptic.api import PeerCertificateH11, ensure_server_certificate, server_ssl_context

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        options: dict[str, Any] = {}
        self.scheme = "http"
        if not insecure_http:
            cert, key = ensure_server_certificate(data_dir, site="site-01", now=datetime.now(UTC))
            context = server_ssl_context(cert, key, data_dir / "site-ca.pem")
            options = {"ssl_context_factory": lambda config, default: context, "http": PeerCertificateH11}
            self.scheme = "https"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", server_header=False, **options
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> ServeThread:
        self._thread.start()
        for _ in range(600):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(20)


def tls_client(base_url: str, ca: Path, cert: tuple[Path, Path] | None = None, **headers: str) -> Any:
    """An httpx client trusting only the site CA, presenting ``cert`` (mutual TLS) if given."""
    import httpx2

    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx2.Client(base_url=base_url, verify=context, timeout=30, headers=headers)

"""``aseptic serve``: the HTTP API (uvicorn), bound to loopback unless told otherwise.

On an empty (or missing) data directory it first initialises it as ``aseptic init`` does and says
where the one-time enrolment token is; a non-empty directory without a ledger is refused.

HTTPS by default: a server certificate issued by the site CA (``D/tls/server.pem``, made on first
start), client certificates from the site CA accepted for mutual TLS (devices, services, managed
endpoints). ``--insecure-http`` (or ``[tls] insecure_http``) serves plain HTTP, for a
TLS-terminating proxy on the same host. ``--twin-endpoint`` (or ``[gateway] endpoint``) turns the
write gateway on; its writer certificate and key are files in ``D/pki/own``, never arguments.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

import typer
from rich.markup import escape

from aseptic.cli._common import (
    ConfigOption,
    DataDirOption,
    data_dir_for,
    handles_errors,
    settings_for,
    stderr,
)
from aseptic.cli._trust import initialise
from aseptic.clock import WallClock
from aseptic.config import Settings, settings_from_mapping
from aseptic.errors import ConfigError
from aseptic.ledger import has_ledger

HostOption = Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")]
PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")]
TwinOption = Annotated[
    str | None,
    typer.Option(
        "--twin-endpoint",
        help="opc.tcp URL of the plant's OPC UA server: turns the write gateway on ([gateway] endpoint).",
    ),
]
InsecureHttpOption = Annotated[
    bool,
    typer.Option(
        "--insecure-http",
        help="Serve plain HTTP, no TLS and no client certificates (behind a local TLS proxy only).",
    ),
]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@handles_errors
def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    twin_endpoint: TwinOption = None,
    insecure_http: InsecureHttpOption = False,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) with the enforcement point on every route.

    HTTPS with a certificate from the site CA and optional client certificates (mutual TLS) by
    default; the write gateway to the plant when --twin-endpoint (or [gateway] endpoint) is set.
    """
    if not host.strip():  # uvicorn binds "" to every interface: never by accident
        raise ConfigError("--host is empty", hint="give an address: 127.0.0.1 (default), or 0.0.0.0 for all")
    settings = _with_overrides(settings_for(config), twin_endpoint, insecure_http)
    directory = data_dir_for(data_dir, settings)
    if not has_ledger(directory):
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(
                f"{directory} is not initialised (and not empty)",
                hint=f"check --data-dir, or `aseptic init --data-dir {directory}`",
            )
        token = initialise(directory, config)
        stderr.print(f"{directory} was empty: initialised it", highlight=False, soft_wrap=True)
        if token is not None:
            stderr.print(
                f"one-time enrolment token: {token} (mode 0600); enrol the first administrator with"
                f" `aseptic user enrol NAME --token-file {token} --data-dir {directory}`",
                highlight=False,
                soft_wrap=True,
            )
    # Imported here: the web stack is not needed by every other command.
    import uvicorn

    from aseptic.api import (
        PeerCertificateH11,
        create_app,
        ensure_server_certificate,
        is_ecdsa_ca,
        server_ssl_context,
    )

    clock = WallClock()
    app = create_app(directory, settings, clock)
    options: dict[str, Any] = {}
    scheme = "http"
    if settings.tls.insecure_http:
        if not _is_loopback(host):
            stderr.print(
                f"[yellow]warning:[/] --insecure-http on {escape(host)}: plain HTTP beyond loopback",
                highlight=False,
                markup=True,
                soft_wrap=True,
            )
    else:
        cert, key = ensure_server_certificate(
            directory,
            site=settings.site.id,
            now=clock.now(),
            valid_days=settings.tls.server_cert_days,
            hosts=(host,) if host not in ("0.0.0.0", "::") else (),  # noqa: S104 - compared, not bound
        )
        context = server_ssl_context(cert, key, directory / "site-ca.pem")
        if not is_ecdsa_ca(directory):
            stderr.print(
                f"[yellow]warning:[/] the site CA of {escape(str(directory))} is Ed25519: browsers refuse"
                " its certificates; run `aseptic key migrate-ca --why ...` (docs/trust.md, ADR 0380)",
                highlight=False,
                markup=True,
                soft_wrap=True,
            )
        options = {"ssl_context_factory": lambda config, default: context, "http": PeerCertificateH11}
        scheme = "https"
    gateway = settings.gateway.endpoint or "off (no --twin-endpoint)"
    attest = settings.attestation
    attestation = (
        f"{len(attest.devices)} device(s) every {attest.interval_s:g} s" if attest.devices else "off"
    )
    schedule = settings.campaign_schedule
    campaign = f"every {schedule.interval_s:g} s" if schedule.enabled else "off"
    stderr.print(
        f"serving the API of {directory} on {scheme}://{host}:{port}; write gateway: {gateway};"
        f" device attestation: {attestation}; campaign schedule: {campaign} (Ctrl-C stops)",
        highlight=False,
        soft_wrap=True,
    )
    # uvicorn.run, not Server.run: it turns the re-raised SIGINT into a clean exit 0.
    uvicorn.run(
        app, host=host, port=port, log_level="warning", server_header=False, proxy_headers=False, **options
    )


def _with_overrides(settings: Settings, twin_endpoint: str | None, insecure_http: bool) -> Settings:
    data = settings.model_dump()
    if twin_endpoint is not None:
        data["gateway"]["endpoint"] = twin_endpoint
    if insecure_http:
        data["tls"]["insecure_http"] = True
    return settings_from_mapping(data, source="--twin-endpoint")

"""``aseptic twin serve`` and ``aseptic twin trust``: the plant over secured OPC UA."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from aseptic.cli._common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    data_dir_for,
    handles_errors,
    print_json,
    settings_for,
    stderr,
)
from aseptic.cli._twin import app
from aseptic.clock import WallClock
from aseptic.crypto import (
    ApplicationRole,
    PkiDirectory,
    add_to_trust_list,
    load_certificate_file,
    subject_common_name,
    thumbprint,
    verify_application_certificate,
)
from aseptic.errors import ConfigError, InputError, SignatureError
from aseptic.twin import Plant, ServerOptions, TwinServer, parse_faults


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # asyncua logs every refused request as an error with its own wording; ours says who and why.
    logging.getLogger("asyncua").setLevel(logging.INFO if verbose else logging.CRITICAL)


async def _serve(server: TwinServer, speed: float, max_samples: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        sys.stdout.write(server.endpoint_url + "\n")
        sys.stdout.flush()
        stderr.print(
            f"serving {server.endpoint_url}: Basic256Sha256 SignAndEncrypt only, X.509 identities "
            f"only, writer {server.options.writer_identity!r}, {speed:g} simulated s per s; Ctrl-C stops",
            highlight=False,
            soft_wrap=True,
        )
        await server.run(speed, stop, max_samples=max_samples)
    s = server.stats
    stderr.print(
        f"stopped after {s.samples} samples ({s.batches} batches finished); refused certificates "
        f"{s.refused_certificates}, denied writes {s.denied_writes}, accepted writes {s.accepted_writes}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("serve")
@handles_errors
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Listen address (config default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="TCP port (config default 4840).")
    ] = None,
    speed: Annotated[
        float | None, typer.Option("--speed", help="Simulated seconds per wall second (config default 3600).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Seed of batch 0 (batch i: seed + i).")
    ] = None,
    fault: Annotated[
        list[str] | None, typer.Option("--fault", help="Fault to inject, number or name; repeatable.")
    ] = None,
    samples: Annotated[
        int | None, typer.Option("--samples", min=1, help="Stop after this many samples (default: never).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Also show asyncua's own log.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the twin over OPC UA: SignAndEncrypt, X.509 client identities, a trust list.

    The first run creates DATA_DIR/pki with the server's and the collector's certificates.

    Trust your own client with `aseptic twin trust CERT.der`. See docs/opcua.md.
    """
    if host is not None and not host.strip():  # "" would listen on every interface: never by accident
        raise ConfigError("--host is empty", hint="give an address: 127.0.0.1 (default), or 0.0.0.0 for all")
    settings = settings_for(config)
    opc = settings.opcua
    speed_x = opc.speed if speed is None else speed
    if not 0 < speed_x <= 1_000_000:
        raise ConfigError(f"--speed {speed_x:g} is outside (0, 1000000] simulated seconds per second")
    faults = parse_faults(fault or ())
    first_seed = settings.twin.seed if seed is None else seed
    options = ServerOptions(
        host=opc.host if host is None else host,
        port=opc.port if port is None else port,
        site=settings.site.id,
        writer_identity=opc.writer_identity,
    )

    def plants(index: int) -> Plant:
        return Plant(first_seed + index, faults=faults, settings=settings.twin)

    _configure_logging(verbose)
    server = TwinServer(plants, data_dir_for(data_dir, settings), options, WallClock())
    asyncio.run(_serve(server, speed_x, samples))


@app.command("trust")
@handles_errors
def trust(
    cert: Annotated[Path, typer.Argument(help="The certificate (DER or PEM) to trust.")],
    server: Annotated[
        bool, typer.Option("--server", help="Trust an OPC UA server (for the collector), not a client.")
    ] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Add a certificate to the trust list (DATA_DIR/pki/trusted, or trusted-servers with --server).

    A running `twin serve` picks the change up at the client's next connection.
    """
    settings = settings_for(config)
    pki = PkiDirectory.of(data_dir_for(data_dir, settings))
    certificate = load_certificate_file(cert)
    role = ApplicationRole.SERVER if server else ApplicationRole.CLIENT
    try:
        verify_application_certificate(certificate, now=WallClock().now(), application_uri=None, role=role)
    except SignatureError as exc:
        raise InputError(f"{cert}: not trusted: {exc}") from None
    path = add_to_trust_list(pki.trusted_servers if server else pki.trusted, certificate)
    result = {
        "trusted": str(path),
        "subject": certificate.subject.rfc4514_string(),
        "common_name": subject_common_name(certificate),
        "thumbprint": thumbprint(certificate),
    }
    if json:
        print_json(result)
    else:
        typer.echo(f"trusted {result['subject']} (thumbprint {result['thumbprint']}) in {path}")

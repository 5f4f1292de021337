"""``aseptic serve``: the HTTP API (uvicorn), bound to loopback unless told otherwise.

On an empty (or missing) data directory it first initialises it as ``aseptic init`` does and says
where the one-time enrolment token is; a non-empty directory without a ledger is refused.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

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
from aseptic.errors import ConfigError
from aseptic.ledger import has_ledger

HostOption = Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")]
PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")]


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
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) with the enforcement point on every route."""
    settings = settings_for(config)
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

    from aseptic.api import create_app

    app = create_app(directory, settings, WallClock())
    if not _is_loopback(host):
        stderr.print(
            f"[yellow]warning:[/] listening on {host}: plain HTTP beyond loopback; put TLS in front",
            highlight=False,
            soft_wrap=True,
        )
    stderr.print(
        f"serving the API of {directory} on http://{host}:{port} (Ctrl-C stops)",
        highlight=False,
        soft_wrap=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False, proxy_headers=False)

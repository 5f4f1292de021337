"""``aseptic twin ...``: simulate batches and serve the plant over OPC UA."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="The plant digital twin: simulate batches, serve them over OPC UA.", no_args_is_help=True
)

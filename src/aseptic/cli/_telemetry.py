"""``aseptic telemetry replay``: ingest a tag-history file through the chain of custody."""

from __future__ import annotations

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
)
from aseptic.clock import WallClock, parse_rfc3339
from aseptic.errors import ConfigError
from aseptic.service import CustodyPipeline
from aseptic.telemetry import TagHistoryReplay

app = typer.Typer(help="Telemetry: replay tag histories through the chain of custody.", no_args_is_help=True)


@app.command("replay")
@handles_errors
def replay(
    history: Annotated[Path, typer.Argument(help="Tag-history CSV (as written by `aseptic twin run`).")],
    start: Annotated[str, typer.Option("--start", help="UTC time of time_h = 0, RFC 3339.")],
    collector: Annotated[
        str, typer.Option("--collector", help="Edge collector id whose key seals the envelopes.")
    ] = "collector-replay",
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Seal the file's readings at the edge, verify them at ingest and log them in the ledger.

    A malformed line stops the replay with its line and column; what came before it is logged.
    """
    settings = settings_for(config)
    try:
        start_time = parse_rfc3339(start)
    except ValueError as exc:
        raise ConfigError(f"--start {start!r}: {exc}", hint="e.g. 2026-01-01T00:00:00Z") from None
    pipeline = CustodyPipeline(
        data_dir_for(data_dir, settings), settings, WallClock(), collector_id=collector
    )
    try:
        for reading in TagHistoryReplay(history, start=start_time):
            pipeline.add_reading(reading)
    finally:
        pipeline.close()
    c = pipeline.counters
    result = {
        "envelopes": c.envelopes,
        "readings": c.readings,
        "rejected": c.rejected,
        "quarantined": c.quarantined,
        "by_reason": dict(c.by_reason),
    }
    if json_out:
        print_json(result)
    else:
        print(
            f"{c.readings} readings in {c.envelopes} envelopes logged; {c.rejected} rejected "
            f"({c.quarantined} quarantined)"
        )

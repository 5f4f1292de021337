"""``aseptic historian ...``: readings by tag and time, each traced to its envelope's log leaf."""

from __future__ import annotations

import math
from datetime import datetime
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
from aseptic.clock import format_rfc3339, parse_rfc3339
from aseptic.errors import InputError
from aseptic.ledger import Historian

app = typer.Typer(help="The historian: readings by tag and time, from the ledger.", no_args_is_help=True)


def _time(text: str, option: str) -> datetime:
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r}: {exc}", hint="RFC 3339, e.g. 2026-01-01T00:00:00Z") from None


@app.command("query")
@handles_errors
def query(
    tag: Annotated[str, typer.Argument(help="Tag name, e.g. temperature_k.")],
    start: Annotated[str, typer.Option("--from", help="Start time, inclusive (RFC 3339).")],
    end: Annotated[str, typer.Option("--to", help="End time, exclusive (RFC 3339).")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Readings of TAG with --from <= time < --to, oldest first, with their log leaf and position."""
    directory = data_dir_for(data_dir, settings_for(config))
    with Historian.open(directory) as historian:
        rows = historian.query(tag, _time(start, "--from"), _time(end, "--to"))
    if json:
        print_json(
            [
                {
                    "tag": row.reading.tag,
                    "time": format_rfc3339(row.reading.time),
                    "value": None if math.isnan(row.reading.value) else row.reading.value,
                    "quality": row.reading.quality.name.lower(),
                    "source": row.reading.source,
                    "leaf": row.leaf,
                    "position": row.position,
                }
                for row in rows
            ]
        )
        return
    for row in rows:
        r = row.reading
        typer.echo(
            f"{format_rfc3339(r.time)}  {r.tag}  {r.value!r}  {r.quality.name.lower()}  {r.source}"
            f"  leaf {row.leaf}#{row.position}"
        )

"""``aseptic witness ...``: a file-based witness that cosigns a site's checkpoints, never a fork."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aseptic.cli._common import JsonOption, handles_errors, print_json, stderr
from aseptic.clock import WallClock, format_rfc3339
from aseptic.ledger import Witness, witness_log

app = typer.Typer(
    help="A file-based witness: cosigns checkpoints after checking consistency.", no_args_is_help=True
)

WitnessDirOption = Annotated[
    Path, typer.Option("--witness-dir", help="The witness's own directory (key, state).")
]


@app.command("init")
@handles_errors
def init(
    witness_dir: WitnessDirOption,
    name: Annotated[
        str, typer.Option("--name", help="The witness's name, shown in its cosignatures.")
    ] = "witness",
) -> None:
    """Create the witness key and W/witness.pub (give it to auditors as a trust anchor)."""
    witness = Witness.init(witness_dir, name, WallClock())
    typer.echo(f"witness      {witness.name}")
    typer.echo(f"key          {witness.public_key.key_id}")
    stderr.print(f"trust anchor: {witness_dir / 'witness.pub'}", highlight=False)


@app.command("cosign")
@handles_errors
def cosign(
    log_data_dir: Annotated[
        Path, typer.Option("--log-data-dir", help="The site's data directory (its ledger).")
    ],
    witness_dir: WitnessDirOption,
    json: JsonOption = False,
) -> None:
    """Cosign the log's newest checkpoint if it is consistent with the last one this witness cosigned.

    Exit 1 on a fork, a rollback or a site key other than the one pinned.
    """
    witness = Witness.open(witness_dir, WallClock())
    checkpoint, cosignature = witness_log(witness, log_data_dir)
    if json:
        print_json(
            {
                "checkpoint_size": checkpoint.size,
                "checkpoint_root": checkpoint.root.hex(),
                **cosignature.to_json(),
            }
        )
        return
    typer.echo(f"cosigned     size {checkpoint.size}, root {checkpoint.root.hex()}")
    typer.echo(
        f"witness      {cosignature.witness} ({cosignature.key_id}) at {format_rfc3339(cosignature.time)}"
    )

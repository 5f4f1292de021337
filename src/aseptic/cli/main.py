"""The ``aseptic`` command: one entry point, noun-verb subcommands."""

from __future__ import annotations

import typer

from aseptic import __version__
from aseptic.cli import (
    _access,
    _audit,
    _backup,
    _batch,
    _bench,
    _breakglass,
    _campaign,
    _campaign_schedule,
    _demo,
    _device,
    _findings,
    _firmware_repo,  # noqa: F401  (registers `firmware repo ...` and `firmware update`)
    _grant,
    _historian,
    _ledger,
    _policy,
    _provenance,
    _record,
    _serve,
    _telemetry,
    _trust,
    _twin,
    _twin_serve,  # noqa: F401  (registers `twin serve` and `twin trust`)
    _user,
    _validation,
    _witness,
)

app = typer.Typer(
    name="aseptic",
    help="Keep an AI-driven pharmaceutical plant's data, models and controls free of tampering.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(_twin.app, name="twin")
app.add_typer(_ledger.app, name="ledger")
app.add_typer(_historian.app, name="historian")
app.add_typer(_telemetry.app, name="telemetry")
app.command("demo")(_demo.demo)
app.command("init")(_trust.init)
app.add_typer(_user.app, name="user")
app.add_typer(_policy.app, name="policy")
app.add_typer(_device.app, name="device")
app.add_typer(_grant.app, name="grant")
app.add_typer(_breakglass.app, name="breakglass")
app.add_typer(_access.app, name="access")
app.add_typer(_provenance.model_app, name="model")
app.add_typer(_provenance.firmware_app, name="firmware")
app.command("serve")(_serve.serve)
app.add_typer(_campaign.app, name="campaign")
_campaign.app.command("schedule")(_campaign_schedule.schedule)
_campaign.app.command("trend")(_campaign_schedule.trend)
app.add_typer(_findings.app, name="findings")
app.add_typer(_validation.app, name="validation")
app.add_typer(_audit.app, name="audit")
app.add_typer(_audit.key_app, name="key")
app.add_typer(_record.app, name="record")
app.add_typer(_batch.app, name="batch")
_user.app.command("unlock")(_record.unlock)
app.add_typer(_bench.app, name="bench")
app.add_typer(_witness.app, name="witness")
app.command("backup")(_backup.backup)
app.command("restore")(_backup.restore)


@app.command("version")
def version() -> None:
    """Print Aseptic's version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()

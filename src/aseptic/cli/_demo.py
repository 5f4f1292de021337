"""``aseptic demo``: the end-to-end chain of custody on this machine."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from aseptic.cli._common import ConfigOption, JsonOption, handles_errors, print_json, settings_for, stderr
from aseptic.crypto import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV
from aseptic.service import run_demo

DEMO_PASSPHRASE_FILE = "key-passphrase"  # noqa: S105 - a file name, not a secret


def _ensure_demo_passphrase(out: Path) -> None:
    """Private keys are never written unencrypted (ADR 0230): without a configured key passphrase the
    demo makes its own random one in OUT/key-passphrase (mode 0600) and says so."""
    if os.environ.get(PASSPHRASE_FILE_ENV) or os.environ.get(PASSPHRASE_ENV):
        return
    path = out / DEMO_PASSPHRASE_FILE
    if not path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        stderr.print(f"demo: made a random key passphrase in {path} (mode 0600)", highlight=False)
    os.environ[PASSPHRASE_FILE_ENV] = str(path.resolve())
    stderr.print(
        f"demo: keys in {out / 'data' / 'keys'} are sealed under {path}; "
        f"export {PASSPHRASE_FILE_ENV}={path.resolve()} to use them with other commands",
        highlight=False,
    )


@handles_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Report and data directory.")] = Path("aseptic-demo"),
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Stream a clean and an attacked batch from the secured twin; sign, log, detect, verify.

    Writes OUT/report.json and OUT/report.html; the data directory is OUT/data, so
    `aseptic ledger verify --data-dir OUT/data` checks the evidence afterwards. Without a configured
    key passphrase, the keys are sealed under a random one the demo writes to OUT/key-passphrase.
    """
    settings = settings_for(config)
    _ensure_demo_passphrase(out)
    # asyncua narrates session negotiation at WARNING; the demo reports what matters itself.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=stderr, transient=False
    ) as bar:
        task = bar.add_task("starting", total=1.0)

        def progress(message: str, fraction: float) -> None:
            bar.update(task, description=message, completed=fraction)

        report = run_demo(out, settings, progress=progress)
    if json_out:
        print_json(report)
        return
    for batch in report["batches"]:
        if batch["attacked"]:
            ttd = batch["time_to_detect_h"]
            found = f"detected after {ttd:.1f} h" if batch["detected"] else "NOT detected"
            attack = batch["attack"]
            print(f"batch {batch['id']}: attacked ({attack['kind']} on {attack['tag']}): {found}")
        else:
            print(f"batch {batch['id']}: clean, {len(batch['findings'])} findings")
    ledger, tel = report["ledger"], report["telemetry"]
    state = "verified" if ledger["verified"] else "VERIFICATION FAILED"
    print(f"ledger: {ledger['size']} leaves, root {ledger['root'][:16]}..., {state}")
    print(
        f"telemetry: {tel['envelopes']} envelopes, {tel['readings']} readings, "
        f"{tel['rejected']} rejected, {tel['quarantined']} quarantined"
    )
    print(f"report: {out / 'report.html'}; evidence: aseptic ledger verify --data-dir {out / 'data'}")

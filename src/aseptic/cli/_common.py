"""What every CLI command shares: settings, the data directory, output and error handling."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from aseptic.config import Settings, load_settings
from aseptic.errors import AsepticError, ConfigError

INTERRUPTED = 130  # 128 + SIGINT, the shells' convention; never 1 (verification failed)
P = ParamSpec("P")
R = TypeVar("R")

# Diagnostics go to stderr; results go to stdout (plain print or --json). Plain text by default: a
# path or name may hold "[...]", which rich markup would drop or choke on (a MarkupError traceback);
# a styled line opts in with markup=True and escapes what it interpolates.
stderr = Console(stderr=True, markup=False)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Keys, certificates and databases (default: from config, else ./aseptic-data)."
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Settings file (default: ./aseptic.toml if present)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def settings_for(config: Path | None) -> Settings:
    """Load the settings named on the command line (or the defaults)."""
    return load_settings(config)


def data_dir_for(data_dir: Path | None, settings: Settings) -> Path:
    """The data directory: the option if given, else the configured one.

    Raises:
        ConfigError: the path exists and is not a directory, or is a link to nothing.
    """
    directory = data_dir if data_dir is not None else settings.site.data_dir
    where = "--data-dir" if data_dir is not None else "[site].data_dir"
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"data directory {directory} is not a directory", hint=f"check {where}")
    if directory.is_symlink() and not directory.exists():
        raise ConfigError(
            f"data directory {directory} is a symbolic link to {directory.readlink()}, which does not exist",
            hint=f"check {where}, or create the target",
        )
    return directory


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


def report_error(error: AsepticError) -> int:
    """Print ``error`` (and its hint) to stderr and return its exit code."""
    # The message and hint are text, not markup: "[gateway]" in a message must stay visible.
    stderr.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False, markup=True)
    if error.hint:
        stderr.print(f"[dim]hint: {escape(error.hint)}[/]", highlight=False, markup=True)
    return error.exit_code


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn an ``AsepticError`` into a message on stderr and its exit code (never a traceback), and
    Ctrl-C into ``INTERRUPTED`` (130): an interrupted ``ledger verify`` must not exit 1, which means
    tamper evidence."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except AsepticError as error:
            raise typer.Exit(report_error(error)) from None
        except KeyboardInterrupt:
            stderr.print("interrupted: the command did not finish", highlight=False)
            raise typer.Exit(INTERRUPTED) from None

    return wrapper

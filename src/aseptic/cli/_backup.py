"""``aseptic backup`` and ``aseptic restore``: signed, verified copies of a data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aseptic.backup import BackupResult, RestoreResult, create_backup, restore_backup
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
from aseptic.clock import WallClock, format_rfc3339
from aseptic.config import DEFAULT_CONFIG_FILE
from aseptic.crypto import SITE_KEY, KeyStore, read_public_key
from aseptic.errors import ConfigError


def _backup_json(result: BackupResult) -> dict[str, Any]:
    manifest = result.manifest
    return {
        "backup": str(result.path),
        "created": format_rfc3339(manifest.created),
        "files": len(manifest.files),
        "bytes": sum(entry.size for entry in manifest.files),
        "ledger": {
            "store": manifest.ledger.store,
            "size": manifest.ledger.size,
            "root": manifest.ledger.root,
        },
        "site_key": str(manifest.site_key.key_id),
        "pruned": [str(path) for path in result.pruned],
        "archived_checkpoints": result.archived_checkpoints,
    }


@handles_errors
def backup(
    to: Annotated[
        Path | None,
        typer.Option(
            "--to", help="Backup directory; each backup is a new sub-directory (default: [backup].directory)."
        ),
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    keep: Annotated[
        int | None, typer.Option("--keep", help="Complete backups to keep in --to (default: [backup].keep).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Write a consistent snapshot of D (ledger, identities, sealed keys, policies, config) with a
    manifest of file digests signed by the site key; apply retention."""
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    root = to if to is not None else settings.backup.directory
    if root is None:
        raise ConfigError("no backup directory", hint="pass --to DIR or set [backup].directory")
    config_file = (
        config if config is not None else (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)
    )
    site_key = KeyStore(directory / "keys").load(SITE_KEY)
    result = create_backup(
        directory,
        root,
        site_key=site_key,
        origin=settings.site.id,
        clock=WallClock(),
        config_file=config_file,
        keep=keep if keep is not None else settings.backup.keep,
        archive=settings.backup.archive_checkpoints,
    )
    summary = _backup_json(result)
    if json:
        print_json(summary)
        return
    typer.echo(f"backup      {result.path}")
    typer.echo(
        f"files       {summary['files']} ({summary['bytes']:,} bytes),"
        f" manifest signed by {summary['site_key']}"
    )
    typer.echo(f"ledger      {summary['ledger']['size']} leaves, root {summary['ledger']['root']}")
    for path in result.pruned:
        stderr.print(f"retention: removed {path}", highlight=False)


def _restore_json(result: RestoreResult) -> dict[str, Any]:
    return {
        "restored": str(result.data_dir),
        "from": str(result.source),
        "created": format_rfc3339(result.manifest.created),
        "files": len(result.manifest.files),
        "site_key": str(result.manifest.site_key.key_id),
        "trusted_key_given": result.trusted_key_given,
        "moved_aside": None if result.moved_aside is None else str(result.moved_aside),
        "verify": result.report.to_json(),
    }


@handles_errors
def restore(
    source: Annotated[
        Path, typer.Option("--from", help="A backup directory, or a --to directory (its newest backup).")
    ],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    site_key: Annotated[
        Path | None,
        typer.Option("--site-key", help="The site's public key (site.pub) to check the manifest with."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Restore over a non-empty D (moved aside to D.before-restore-T).")
    ] = False,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Restore the ledger into this empty PostgreSQL database (no password)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Verify a backup (signature, every file's digest), restore it into D and verify the restored
    ledger against the backup's checkpoint. A damaged backup exits 1 naming the file."""
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    trusted = read_public_key(site_key) if site_key is not None else None
    result = restore_backup(source, directory, clock=WallClock(), trusted=trusted, force=force, store=store)
    if json:
        print_json(_restore_json(result))
        return
    report = result.report
    typer.echo(f"restored    {result.data_dir} from {result.source}")
    typer.echo(f"files       {len(result.manifest.files)}, every digest matches the signed manifest")
    typer.echo(
        f"ledger      verified: {report.size} leaves, root {report.root}, {report.checkpoints} checkpoints"
    )
    if result.moved_aside is not None:
        stderr.print(f"the previous data directory is now {result.moved_aside}", highlight=False)
    if not result.trusted_key_given:
        stderr.print(
            f"note: checked with the backup's own site key {result.manifest.site_key.key_id};"
            " pass --site-key with your copy of site.pub to rule out a replaced backup",
            highlight=False,
        )

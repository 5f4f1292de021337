"""``aseptic firmware repo init|add|publish|refresh|rotate-root`` and ``aseptic firmware update DEVICE``.

The site's TUF repository of firmware images (default ``D/tuf``) with its role keys sealed in the
site's key store (``D/keys/tuf-*.key``), and a device's TUF client. See docs/provenance.md,
"Firmware updates through TUF", and docs/adr/0302-tuf-operations.md.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

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
from aseptic.cli._provenance import firmware_app
from aseptic.clock import WallClock, format_rfc3339
from aseptic.crypto import SITE_KEY, KeyStore
from aseptic.errors import BackendError, ConfigError, InputError
from aseptic.ledger import Ledger, has_ledger
from aseptic.provenance import ArtifactKind, LedgerFindingSink, load_verified

repo_app = typer.Typer(
    help="The site's TUF repository of firmware images (role keys sealed in the key store).",
    no_args_is_help=True,
)
firmware_app.add_typer(repo_app, name="repo")

RepoOption = Annotated[Path | None, typer.Option("--repo", help="The repository folder (default: D/tuf).")]
ROOT_ENTRY_TYPE = "provenance.tuf_root"


@contextmanager
def _site(data_dir: Path | None, config: Path | None) -> Iterator[tuple[Path, KeyStore, Ledger]]:
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    if not has_ledger(directory):
        raise ConfigError(f"{directory} is not initialised", hint=f"aseptic init --data-dir {directory}")
    keys = KeyStore.open(directory)
    site_key = keys.load_or_create(SITE_KEY)
    with Ledger.open(
        directory, site_key=site_key, clock=WallClock(), origin=settings.site.id, create=False
    ) as ledger:
        yield directory, keys, ledger


def _record_root(ledger: Ledger, repo: Any, action: str) -> int:
    """A ledger entry for a new root (the trust anchor of every device's updates)."""
    version = repo.versions()["root"]
    data = (repo.metadata_dir / f"{version}.root.json").read_bytes()
    return ledger.append_finding(
        {
            "type": ROOT_ENTRY_TYPE,
            "action": action,
            "repository": str(repo.directory),
            "root_version": version,
            "root_sha256": hashlib.sha256(data).hexdigest(),
            "time": format_rfc3339(WallClock().now()),
        }
    )


def _show(result: dict[str, Any], json: bool) -> None:
    if json:
        print_json(result)
    else:
        for label, value in result.items():
            typer.echo(f"{label:<18}{value}")


@repo_app.command("init")
@handles_errors
def init(
    repo: RepoOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Create the repository: Ed25519 role keys sealed in the key store, signed root version 1."""
    from aseptic.provenance import TufRepository

    with _site(data_dir, config) as (directory, keys, ledger):
        repository = TufRepository.init(repo or directory / "tuf", keys, now=WallClock().now())
        leaf = _record_root(ledger, repository, "init")
    _show(
        {
            "repository": str(repository.directory),
            "trusted_root": str(repository.metadata_dir / "1.root.json"),
            "role_keys": ", ".join(f"tuf-{r}" for r in ("root", "targets", "snapshot", "timestamp")),
            "ledger_leaf": leaf,
        },
        json,
    )


@repo_app.command("add")
@handles_errors
def add(
    image: Annotated[Path, typer.Argument(help="A firmware image with its signed manifest (firmware sign).")],
    name: Annotated[str | None, typer.Option("--name", help="Target name (default: the file name).")] = None,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="The manifest (default: IMAGE.manifest.json).")
    ] = None,
    repo: RepoOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Verify IMAGE against its signed manifest (refusal: a Finding), then stage it for publish."""
    from aseptic.provenance import TufRepository

    with _site(data_dir, config) as (directory, keys, ledger):
        repository = TufRepository.open(repo or directory / "tuf", keys)
        loaded = load_verified(
            image,
            [keys.public(SITE_KEY)],
            kind=ArtifactKind.FIRMWARE,
            decode=bytes,
            now=WallClock().now(),
            sink=LedgerFindingSink(ledger),
            retired=[key.key_id for key in keys.retired(SITE_KEY)],
            manifest=manifest,
            purpose="TUF repository",
        )
        target = name or image.name
        repository.stage(target, loaded.data)
    _show(
        {
            "staged": target,
            "sha256": hashlib.sha256(loaded.data).hexdigest(),
            "version": loaded.manifest.statement.version,
            "next": "aseptic firmware repo publish",
        },
        json,
    )


@repo_app.command("publish")
@handles_errors
def publish(
    repo: RepoOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Sign new targets, snapshot and timestamp metadata with every staged image."""
    from aseptic.provenance import TufRepository

    with _site(data_dir, config) as (directory, keys, _):
        repository = TufRepository.open(repo or directory / "tuf", keys)
        images = repository.staged()
        version = repository.publish(now=WallClock().now())
    _show({"published": ", ".join(images), "targets_version": version}, json)


@repo_app.command("refresh")
@handles_errors
def refresh(
    snapshot: Annotated[bool, typer.Option("--snapshot", help="Re-sign the snapshot too.")] = False,
    repo: RepoOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Re-sign the timestamp (expires in 1 day; --snapshot: 7 days): run daily, or clients see a freeze."""
    from aseptic.provenance import TufRepository

    with _site(data_dir, config) as (directory, keys, _):
        repository = TufRepository.open(repo or directory / "tuf", keys)
        versions = repository.refresh(now=WallClock().now(), snapshot=snapshot)
    _show({f"{role}_version": version for role, version in versions.items()}, json)


@repo_app.command("rotate-root")
@handles_errors
def rotate_root(
    role: Annotated[
        list[str], typer.Option("--role", help="Also replace this role's key (targets, snapshot, timestamp).")
    ] = [],  # noqa: B006 (typer reads the default, never mutates it)
    repo: RepoOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Replace the root key (and --role keys): root N+1 signed by the old root key and the new."""
    from aseptic.provenance import TufRepository

    with _site(data_dir, config) as (directory, keys, ledger):
        repository = TufRepository.open(repo or directory / "tuf", keys)
        version = repository.rotate(("root", *role), now=WallClock().now())
        leaf = _record_root(ledger, repository, "rotate")
    _show({"root_version": version, "rotated": ", ".join(["root", *role]), "ledger_leaf": leaf}, json)


@firmware_app.command("update")
@handles_errors
def update(
    device: Annotated[str, typer.Argument(help="The device to update, e.g. TIC-101.")],
    target: Annotated[str | None, typer.Option("--target", help="Image name (default: DEVICE.fw).")] = None,
    mirror: Annotated[Path | None, typer.Option("--mirror", help="Mirror folder (default: D/tuf).")] = None,
    trusted_root: Annotated[
        Path | None,
        typer.Option(
            "--trusted-root", help="Root metadata to trust on first use (default: D/tuf's 1.root.json)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the verified image here.")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Fetch DEVICE's image through TUF; rollback, freeze, mix-and-match, tamper: exit 1 and a Finding."""
    from aseptic.provenance import FirmwareUpdateClient

    if not device or "/" in device or device.startswith("."):
        raise InputError(f"device {device!r}: a plain device id is needed, e.g. TIC-101")
    with _site(data_dir, config) as (directory, _, ledger):
        state = directory / "tuf-clients" / device
        anchor = None
        if not (state / "metadata" / "root.json").exists():
            root_file = trusted_root or directory / "tuf" / "metadata" / "1.root.json"
            try:
                anchor = root_file.read_bytes()
            except OSError as exc:
                raise InputError(
                    f"{device}: no trusted TUF root yet and {root_file} cannot be read ({exc.strerror})",
                    hint="give the repository's root metadata with --trusted-root FILE",
                ) from None
        name = target or f"{device}.fw"
        client = FirmwareUpdateClient(
            state, mirror or directory / "tuf", trusted_root=anchor, sink=LedgerFindingSink(ledger)
        )
        data = client.fetch(name, now=WallClock().now())
        versions = client.trusted_versions()
    written = out or state / "targets" / name
    if out is not None:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise BackendError(f"cannot write {out}: {exc.strerror}") from None
    _show(
        {
            "device": device,
            "image": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "written": str(written),
            **{f"{role}_version": version for role, version in versions.items()},
        },
        json,
    )

"""``aseptic model|firmware sign|verify``: signed manifests for artifacts (docs/provenance.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aseptic import __version__
from aseptic.cli._common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    data_dir_for,
    handles_errors,
    print_json,
    settings_for,
)
from aseptic.clock import WallClock
from aseptic.crypto import SITE_KEY, KeyStore, read_public_key
from aseptic.errors import ConfigError
from aseptic.ledger import Ledger
from aseptic.provenance import (
    ArtifactKind,
    LedgerReference,
    ManifestSpec,
    manifest_path_for,
    record_manifest,
    sign_artifact,
    verify_artifact_manifest,
    write_manifest,
)

PathArgument = Annotated[Path, typer.Argument(help="The artifact: one file or a directory of files.")]
SiteKeyOption = Annotated[
    Path | None,
    typer.Option("--site-key", help="The trusted public key file (default: D/site.pub)."),
]
ManifestOption = Annotated[
    Path | None, typer.Option("--manifest", help="The manifest (default: PATH.manifest.json).")
]


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise ConfigError(f"--{what} {value!r}: expected NAME=VALUE")
        pairs[key] = text
    return pairs


def _metrics(values: list[str]) -> dict[str, float]:
    metrics = {}
    for key, text in _pairs(values, "metric").items():
        try:
            metrics[key] = float(text)
        except ValueError:
            raise ConfigError(f"--metric {key}={text}: the value is not a number") from None
    return metrics


def _references(values: list[str], ledger: Ledger) -> tuple[LedgerReference, ...]:
    references = []
    for value in values:
        first, _, last = value.partition("-")
        try:
            first_leaf, last_leaf = int(first), int(last or first)
        except ValueError:
            raise ConfigError(f"--training-leaves {value!r}: expected FIRST-LAST (leaf indexes)") from None
        references.append(
            LedgerReference(ledger.origin, first_leaf, last_leaf, ledger.size, ledger.root.hex())
        )
    return tuple(references)


def _sign(
    kind: ArtifactKind,
    path: Path,
    *,
    data_dir: Path | None,
    config: Path | None,
    name: str | None,
    version: str,
    intended_use: str,
    approver: str,
    code_version: str,
    params: list[str],
    metrics: list[str],
    training_leaves: list[str],
    out: Path | None,
    json: bool,
) -> None:
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    site_key = KeyStore.open(directory).load_or_create(SITE_KEY)
    clock = WallClock()
    with Ledger.open(directory, site_key=site_key, clock=clock, origin=settings.site.id) as ledger:
        spec = ManifestSpec(
            kind=kind,
            name=name if name is not None else path.name,
            version=version,
            built_at=clock.now(),
            builder_id=f"urn:aseptic:site:{settings.site.id}",
            code_version=code_version,
            intended_use=intended_use,
            approver=approver,
            parameters=_pairs(params, "param"),
            metrics=_metrics(metrics),
            training_data=_references(training_leaves, ledger),
        )
        manifest = sign_artifact(path, spec, site_key)
        leaf = record_manifest(ledger, manifest)
    target = out if out is not None else manifest_path_for(path)
    write_manifest(manifest, target)
    result = {
        "manifest": str(target),
        "manifest_sha256": manifest.sha256,
        "kind": kind.value,
        "name": spec.name,
        "version": spec.version,
        "files": len(manifest.statement.files),
        "key": site_key.key_id,
        "ledger_leaf": leaf,
    }
    if json:
        print_json(result)
    else:
        for label, value in result.items():
            typer.echo(f"{label:<16}{value}")


def _verify(
    kind: ArtifactKind,
    path: Path,
    *,
    manifest: Path | None,
    site_key: Path | None,
    data_dir: Path | None,
    config: Path | None,
    json: bool,
) -> None:
    directory = data_dir_for(data_dir, settings_for(config))
    trusted = read_public_key(site_key if site_key is not None else directory / "site.pub")
    retired = [key.key_id for key in KeyStore(directory / "keys", passphrase=None).retired(SITE_KEY)]
    verified = verify_artifact_manifest(path, manifest, [trusted], retired=retired, kind=kind)
    statement = verified.statement
    result = {
        "artifact": str(path),
        "kind": statement.kind.value,
        "name": statement.name,
        "version": statement.version,
        "files": len(statement.files),
        "key": verified.key_id,
        "manifest_sha256": verified.sha256,
    }
    if json:
        print_json({"verified": True, **result})
    else:
        typer.echo(
            f"verified {statement.kind.value} {statement.name} {statement.version}: "
            f"{len(statement.files)} file(s) match the manifest signed by {verified.key_id}"
        )


def _artifact_app(kind: ArtifactKind, noun: str) -> typer.Typer:
    app = typer.Typer(help=f"Signed manifests for {noun}: sign and verify before load.", no_args_is_help=True)

    @app.command("sign")
    @handles_errors
    def sign(
        path: PathArgument,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        name: Annotated[str | None, typer.Option("--name", help="Default: the file name.")] = None,
        version: Annotated[str, typer.Option("--version", help="The artifact's version.")] = "unversioned",
        intended_use: Annotated[str, typer.Option("--intended-use", help="What it may be used for.")] = "",
        approver: Annotated[str, typer.Option("--approver", help="Who approved the release.")] = "",
        code_version: Annotated[
            str, typer.Option("--code-version", help="Version of the code that built it.")
        ] = __version__,
        param: Annotated[list[str], typer.Option("--param", help="A build parameter NAME=VALUE.")] = [],  # noqa: B006 (typer reads the default, never mutates it)
        metric: Annotated[list[str], typer.Option("--metric", help="A validation metric NAME=NUMBER.")] = [],  # noqa: B006
        training_leaves: Annotated[
            list[str], typer.Option("--training-leaves", help="Ledger leaves FIRST-LAST it was built from.")
        ] = [],  # noqa: B006
        out: Annotated[Path | None, typer.Option("--out", help="Default: PATH.manifest.json.")] = None,
        json: JsonOption = False,
    ) -> None:
        """Hash every file, sign the manifest with the site key, record it in the ledger."""
        _sign(
            kind,
            path,
            data_dir=data_dir,
            config=config,
            name=name,
            version=version,
            intended_use=intended_use,
            approver=approver,
            code_version=code_version,
            params=param,
            metrics=metric,
            training_leaves=training_leaves,
            out=out,
            json=json,
        )

    @app.command("verify")
    @handles_errors
    def verify(
        path: PathArgument,
        manifest: ManifestOption = None,
        site_key: SiteKeyOption = None,
        data_dir: DataDirOption = None,
        config: ConfigOption = None,
        json: JsonOption = False,
    ) -> None:
        """Exit 0 only if PATH matches a manifest signed by the site's current key (1 tamper, 2 usage)."""
        _verify(kind, path, manifest=manifest, site_key=site_key, data_dir=data_dir, config=config, json=json)

    return app


model_app = _artifact_app(ArtifactKind.MODEL, "ML models")
firmware_app = _artifact_app(ArtifactKind.FIRMWARE, "device firmware images")

"""``aseptic model|firmware sign|verify``, ``aseptic model deploy|record`` (docs/provenance.md)."""

from __future__ import annotations

import json as jsonlib
import shutil
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

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
from aseptic.clock import WallClock, parse_rfc3339
from aseptic.crypto import SITE_KEY, KeyStore, read_public_key
from aseptic.errors import AccessDenied, BackendError, ConfigError, InputError
from aseptic.ledger import LeafKind, Ledger, has_ledger
from aseptic.provenance import (
    AcceptanceCriterion,
    ArtifactKind,
    LedgerFindingSink,
    LedgerReference,
    ManifestSpec,
    build_model_record,
    deployment_entry,
    load_verified,
    manifest_path_for,
    parse_manifest,
    record_manifest,
    render_html,
    render_markdown,
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


class _DecisionLogFindings:
    """A ``FindingLog`` over the trust decision log (which owns the ledger while a command runs)."""

    def __init__(self, log: Any) -> None:
        self._log = log

    def append_finding(self, payload: Any) -> int:
        sequence: int = self._log.record(payload)
        return sequence


@model_app.command("deploy")
@handles_errors
def deploy(
    path: PathArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger; required).")] = "",
    session_file: Annotated[
        Path | None,
        typer.Option("--session-file", envvar="ASEPTIC_SESSION_FILE", help="Your session token file."),
    ] = None,
    manifest: ManifestOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Verify the model, ask the policy (deploy_model, two-person rule), deploy it to D/deployed, log it."""
    from aseptic.cli._trust import open_trust
    from aseptic.trust import AccessRequest, EntityRef, RequestContext, model_entity

    if not reason.strip():
        raise ConfigError("a deployment needs --reason (it is recorded in the ledger)")
    with open_trust(data_dir, config) as ctx:
        actor = ctx.authenticate(session_file)
        now = ctx.now()
        keys = KeyStore(ctx.data_dir / "keys", passphrase=None)
        retired = [key.key_id for key in keys.retired(SITE_KEY)]
        sink = LedgerFindingSink(_DecisionLogFindings(ctx.log))
        floor = _deployed_build_time(ctx.data_dir)
        try:
            loaded = load_verified(
                path,
                [ctx.site_key.public],
                kind=ArtifactKind.MODEL,
                decode=bytes,
                now=now,
                sink=sink,
                retired=retired,
                manifest=manifest,
                purpose="deployment",
                not_built_before=floor,
            )
        finally:
            ctx.log.flush()
        name = loaded.manifest.statement.name
        request = AccessRequest(
            principal=EntityRef(actor.kind, actor.name),
            action="deploy_model",
            resource=EntityRef("Model", name),
            # elevated: true only under a two-person grant; the enforcement point's grants fill it once
            # they exist (issue: zero-trust grants). Without one, deploy_model is denied by default.
            context=RequestContext(
                batch_state="none",
                firmware_attested=True,
                source_zone="operations",
                conduit="cli",
                time=now,
                elevated=False,
            ),
        )
        decision = ctx.enforcement_point().authorize(request, extra=[actor.to_entity(), model_entity(name)])
        if not decision.allowed:
            ctx.log.flush()
            raise AccessDenied(
                f"{actor.kind} {actor.name!r} may not deploy model {name!r} (decision logged)",
                reasons=decision.reasons + decision.errors,
                hint="deploy_model needs the two-person rule: an approved, active elevation grant",
            )
        target_dir = ctx.data_dir / "deployed"
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        if path.is_dir():
            raise InputError(f"{path}: deploying a directory artifact is not supported yet")
        target.write_bytes(loaded.data)
        shutil.copyfile(
            manifest if manifest is not None else manifest_path_for(path), manifest_path_for(target)
        )
        entry = deployment_entry(
            loaded.manifest,
            principal=f"{actor.kind}::{actor.name}",
            reason=reason,
            target=str(target),
            time=now,
            policy_ids=decision.policy_ids,
        )
        ctx.log.record(entry)
        ctx.log.flush()
    if json:
        print_json({"deployed": True, **entry})
    else:
        typer.echo(f"deployed {name} {entry['version']} to {target} (logged)")


def _deployed_build_time(data_dir: Path) -> datetime | None:
    """The signed build time of the model now in ``D/deployed`` (none deployed: None)."""
    deployed = data_dir / "deployed"
    if not deployed.is_dir():
        return None
    times = []
    for manifest_file in deployed.glob("*.manifest.json"):
        try:
            envelope = parse_manifest(manifest_file.read_bytes(), source=str(manifest_file))
            document = jsonlib.loads(envelope.payload)
            times.append(parse_rfc3339(document["predicate"]["runDetails"]["metadata"]["finishedOn"]))
        except (InputError, OSError, ValueError, KeyError, TypeError):
            continue  # a deployed file is re-verified at load; here only its build time matters
    return max(times) if times else None


@model_app.command("record")
@handles_errors
def record(
    path: PathArgument,
    out: Annotated[Path, typer.Option("--out", help="The record file: .html or .md.")],
    accept: Annotated[
        list[str], typer.Option("--accept", help="Acceptance criterion NAME<=NUMBER (or >=, <, >).")
    ] = [],  # noqa: B006 (typer reads the default, never mutates it)
    manifest: ManifestOption = None,
    site_key: SiteKeyOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the GMP model record of PATH (verified first) from its manifest and the ledger."""
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    criteria = [AcceptanceCriterion.parse(text) for text in accept]
    if out.suffix.lower() not in (".html", ".htm", ".md"):
        raise ConfigError(f"--out {out}: the record is written as .html or .md")
    trusted = read_public_key(site_key if site_key is not None else directory / "site.pub")
    retired = [key.key_id for key in KeyStore(directory / "keys", passphrase=None).retired(SITE_KEY)]
    verified = verify_artifact_manifest(path, manifest, [trusted], retired=retired, kind=ArtifactKind.MODEL)
    clock = WallClock()
    entries: list[tuple[int, Any]] = []
    if has_ledger(directory):
        signing = KeyStore.open(directory).load_or_create(SITE_KEY)
        with Ledger.open(directory, site_key=signing, clock=clock, origin=settings.site.id) as ledger:
            for kind in (LeafKind.FINDING, LeafKind.AUDIT, LeafKind.DECISION):
                entries += [(leaf, jsonlib.loads(data)) for leaf, data in ledger.entries(kind)]
    entries.sort(key=lambda pair: pair[0])
    method, explanation = _explain(path)
    model_record = build_model_record(
        verified,
        entries,
        acceptance=criteria,
        generated_at=clock.now(),
        explanation_method=method,
        explanation=explanation,
    )
    text = render_markdown(model_record) if out.suffix.lower() == ".md" else render_html(model_record)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BackendError(f"cannot write {out}: {exc.strerror}") from None
    typer.echo(
        f"wrote {out}: {len(model_record.history)} ledger events, {len(model_record.gaps)} open gap(s)"
    )


def _explain(path: Path) -> tuple[str, tuple[tuple[str, float], ...]]:
    """How this model's predictions are explained, with an example (for the PAA soft sensor)."""
    from aseptic.twin import PaaSoftSensor, simulate_calibration

    try:
        sensor = PaaSoftSensor.from_bytes(path.read_bytes())
    except (InputError, OSError):
        return "", ()
    spectra, paa = simulate_calibration(20_190_602, 1)
    example = sensor.explain(spectra[0])
    method = (
        "linear PLS: each prediction is the calibration mean plus one exact additive term per spectral "
        "feature window (PaaSoftSensor.explain); example below for a validation spectrum at "
        f"{paa[0]:.0f} mg/L, "
        f"predicted {sensor.predict(spectra[0]):.0f} mg/L"
    )
    return method, example


firmware_app = _artifact_app(ArtifactKind.FIRMWARE, "device firmware images")

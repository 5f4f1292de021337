"""``aseptic ledger ...``: create the site's log, sign checkpoints, show its status, verify it."""

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
    stderr,
)
from aseptic.clock import WallClock, format_rfc3339
from aseptic.crypto import SITE_KEY, KeyStore, read_public_key
from aseptic.errors import ConfigError, InputError
from aseptic.ledger import (
    BundleRejected,
    BundleReport,
    Checkpoint,
    Cosignature,
    Ledger,
    LedgerStatus,
    LedgerTampered,
    Report,
    Witness,
    export_bundle,
    read_status,
    trace_record,
    verify_bundle,
    verify_ledger,
    witness_log,
)
from aseptic.service import LastVerification, record_verification

app = typer.Typer(
    help="The site's append-only Merkle log: status, checkpoints, verification, evidence bundles, lineage.",
    no_args_is_help=True,
)

BundleOption = Annotated[
    Path | None,
    typer.Option(
        "--bundle", help="Verify this evidence bundle (from `ledger export`) instead of a data directory."
    ),
]
TrustOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--trust",
        help="A trusted public key file ('<algorithm> <hex>': site.pub or a witness.pub). Repeatable.",
    ),
]


def _open_ledger(data_dir: Path, origin: str, *, create: bool, store: str | None = None) -> Ledger:
    keys = KeyStore.open(data_dir) if create else KeyStore(data_dir / "keys")
    site_key = keys.load_or_create(SITE_KEY) if create else keys.load(SITE_KEY)
    return Ledger.open(
        data_dir, site_key=site_key, clock=WallClock(), origin=origin, create=create, store=store
    )


def _kinds(leaves: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in leaves.items()) or "empty"


def _print_status(status: LedgerStatus) -> None:
    typer.echo(f"ledger      {status.ledger}")
    typer.echo(f"size        {status.size} leaves ({_kinds(status.leaves)})")
    typer.echo(f"root        {status.root.hex()}")
    typer.echo(f"readings    {status.readings}")
    latest = status.latest_checkpoint
    if latest is None:
        typer.echo("checkpoint  none yet (run `aseptic ledger checkpoint`)")
    else:
        typer.echo(
            f"checkpoint  size {latest.size} at {format_rfc3339(latest.time)}"
            f" ({status.size - latest.size} leaves since), {status.checkpoints} in all"
        )


@app.command("init")
@handles_errors
def init(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="postgresql://USER@HOST:PORT/DB for a PostgreSQL ledger (no password: PGPASSFILE);"
            " default: [ledger].store, else D/ledger.db.",
        ),
    ] = None,
) -> None:
    """Create the site key, D/site.pub (the auditor's trust anchor) and an empty D/ledger.db (or
    the ledger tables in a PostgreSQL database, recorded in D/ledger.store)."""
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    url = store if store is not None else settings.ledger.store_url()
    with _open_ledger(directory, settings.site.id, create=True, store=url):
        pass
    status = read_status(directory)
    if json:
        print_json(status.to_json())
    else:
        _print_status(status)
        stderr.print(
            f"trust anchor: {directory / 'site.pub'} (give a copy to your auditors)", highlight=False
        )


@app.command("status")
@handles_errors
def status(data_dir: DataDirOption = None, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Size, root and contents of the log and its latest checkpoint (no verification)."""
    result = read_status(data_dir_for(data_dir, settings_for(config)))
    if json:
        print_json(result.to_json())
    else:
        _print_status(result)


@app.command("checkpoint")
@handles_errors
def checkpoint(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the signed checkpoint note to this file.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Sign the current tree head with the site key, store it, and print its note."""
    settings = settings_for(config)
    with _open_ledger(data_dir_for(data_dir, settings), settings.site.id, create=False) as ledger:
        signed = ledger.checkpoint()
    note = signed.to_note()
    if out is not None:
        try:
            out.write_text(note, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
    if json:
        print_json(
            {
                "size": signed.size,
                "root": signed.root.hex(),
                "time": format_rfc3339(signed.time),
                "origin": signed.origin,
                "key_id": signed.key_id,
                "note": note,
            }
        )
    else:
        typer.echo(note, nl=False)


def _read_checkpoint(path: Path) -> Checkpoint:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read checkpoint file {path}: {exc}") from None
    try:
        return Checkpoint.from_note(text)
    except InputError as exc:
        raise InputError(
            f"{path}: {exc}", hint="pass a file written by `aseptic ledger checkpoint --out`"
        ) from None


def _print_report(report: Report) -> None:
    typer.echo(f"ledger       {report.ledger}")
    typer.echo(f"size         {report.size} leaves ({_kinds(report.leaves)})")
    typer.echo(f"root         {report.root}")
    typer.echo(f"readings     {report.readings} rows checked against their envelopes")
    proofs = report.consistency_proofs
    typer.echo(f"checkpoints  {report.checkpoints} signed roots matched, {proofs} consistency proofs checked")
    typer.echo(
        f"signatures   {report.envelope_signatures} envelope signatures verified with logged collector keys"
    )


@app.command("verify")
@handles_errors
def verify(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    site_key: Annotated[
        Path | None,
        typer.Option(
            "--site-key", help="The site's public key (default: D/site.pub; auditors: their own copy)."
        ),
    ] = None,
    trusted: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint", help="A checkpoint note you kept; the log must still match it. Repeatable."
        ),
    ] = None,
    require_signatures: Annotated[
        bool,
        typer.Option("--require-signatures", help="Fail on envelopes whose collector key is not in the log."),
    ] = False,
    bundle: BundleOption = None,
    trust: TrustOption = None,
    json: JsonOption = False,
) -> None:
    """Recompute the whole log from its rows and check every hash, signature, checkpoint and reading;
    or, with --bundle, check an evidence bundle offline against the --trust keys only.

    Exit 0 clean, 1 tampered (the first discrepancy is printed), 2 bad usage, 3 backend failure.
    """
    if bundle is not None:
        _verify_bundle(bundle, trust or [], json=json)
        return
    if trust:
        raise ConfigError("--trust applies to --bundle", hint="for a data directory use --site-key")
    directory = data_dir_for(data_dir, settings_for(config))
    if not directory.is_dir():
        raise ConfigError(f"data directory {directory} does not exist", hint="check --data-dir")
    public_key = read_public_key(site_key if site_key is not None else directory / "site.pub")
    anchors = [_read_checkpoint(path) for path in trusted or ()]
    try:
        report = verify_ledger(directory, public_key, trusted=anchors, require_signatures=require_signatures)
    except LedgerTampered as tampered:
        _remember(directory, False, tampered.report.size, tampered.message)
        if json:
            print_json(tampered.report.to_json())
        raise
    _remember(directory, True, report.size, None)
    if json:
        print_json(report.to_json())
        return
    _print_report(report)
    if report.envelopes_without_logged_key:
        stderr.print(
            f"warning: {report.envelopes_without_logged_key} envelopes have no collector key in the log;"
            " their signatures were not checked (--require-signatures makes this an error)",
            highlight=False,
        )
    typer.echo("ok: the ledger matches its hashes and signatures")


def _remember(directory: Path, ok: bool, size: int, reason: str | None) -> None:
    # The outcome for operations (/metrics); not evidence: an auditor re-runs the verification.
    record_verification(directory, LastVerification(ok, WallClock().now(), size, reason))


def _read_bundle(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read bundle {path}: {exc.strerror}") from None


def _print_bundle_report(path: Path, report: BundleReport) -> None:
    typer.echo(f"bundle       {path}")
    typer.echo(
        f"batch        {report.batch_id} of {report.origin}, leaves {report.first_leaf}-{report.last_leaf}"
    )
    typer.echo(f"records      {sum(report.records.values())} ({_kinds(report.records)}), every one proven")
    typer.echo(
        f"readings     {report.readings} in {report.envelope_signatures} envelopes with verified signatures"
    )
    typer.echo(f"anchor       size {report.anchor_size}, root {report.anchor_root}")
    typer.echo(
        f"checkpoints  {report.checkpoints}, each a prefix of the anchor"
        f" ({report.checkpoint_pairs} pairs consistent)"
    )
    typer.echo(f"trusted by   {', '.join(report.trusted_by)}")
    typer.echo(f"renderings   {report.renderings} matched the digests in the proven export entry")


def _verify_bundle(path: Path, trust: list[Path], *, json: bool) -> None:
    keys = [read_public_key(key) for key in trust]
    try:
        report = verify_bundle(_read_bundle(path), keys)
    except BundleRejected as rejected:
        if json:
            print_json({"verified": False, "object": rejected.obj, "reason": rejected.reason})
        raise
    if json:
        print_json(report.to_json())
        return
    _print_bundle_report(path, report)
    typer.echo("ok: every record in the bundle is proven against a trusted checkpoint")


@app.command("export")
@handles_errors
def export(
    batch: Annotated[str, typer.Option("--batch", help="The batch id (from its lineage START entry).")],
    out: Annotated[Path, typer.Option("--out", help="The bundle file to write (JSON).")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    witness_dir: Annotated[
        Path | None,
        typer.Option("--witness-dir", help="Also have this file-based witness cosign the anchor."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Write the offline evidence bundle of a batch: its records, proofs, checkpoints and renderings.

    Logs the export (an audit entry with the renderings' digests) and signs the anchor checkpoint.
    """
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    clock = WallClock()
    witness = Witness.open(witness_dir, clock) if witness_dir is not None else None

    def cosign(checkpoint: Checkpoint) -> Cosignature:
        assert witness is not None  # noqa: S101 - only passed when a witness was opened
        return witness_log(witness, directory, checkpoint)[1]

    with _open_ledger(directory, settings.site.id, create=False) as ledger:
        result = export_bundle(
            ledger,
            directory,
            batch,
            out,
            clock=clock,
            actor="cli:ledger-export",
            cosign=cosign if witness is not None else None,
        )
    summary = {
        "batch_id": result.batch_id,
        "first_leaf": result.first_leaf,
        "last_leaf": result.last_leaf,
        "records": result.records,
        "anchor_size": result.anchor.size,
        "anchor_root": result.anchor.root.hex(),
        "checkpoints": result.checkpoints,
        "cosignatures": result.cosignatures,
        "path": str(result.path),
    }
    if json:
        print_json(summary)
        return
    typer.echo(f"bundle       {result.path}")
    typer.echo(f"batch        {result.batch_id}, window leaves {result.first_leaf}-{result.last_leaf}")
    typer.echo(f"records      {result.records}, each with an inclusion proof")
    typer.echo(f"anchor       size {result.anchor.size}, root {result.anchor.root.hex()}")
    typer.echo(f"checkpoints  {result.checkpoints}, cosignatures {result.cosignatures}")
    stderr.print(
        f"verify with: aseptic ledger verify --bundle {result.path} --trust site.pub", highlight=False
    )


@app.command("trace")
@handles_errors
def trace(
    record: Annotated[str, typer.Argument(help="A batch id, or a leaf index inside a batch's window.")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Print a batch's lineage: the envelopes, model versions, decisions and findings that fed it."""
    result = trace_record(data_dir_for(data_dir, settings_for(config)), record)
    if json:
        print_json(result.to_json())
        return
    for line in result.lines():
        typer.echo(line)

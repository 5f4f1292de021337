"""``aseptic audit show|review|export|verify``: the GMP audit trail, its review and its evidence."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from aseptic.audit import (
    AuditEvent,
    AuditFilter,
    RecordSigner,
    export_audit_trail,
    read_audit_trail,
    rotate_site_key,
    sign_review,
    verify_audit_bundle,
)
from aseptic.cli._common import ConfigOption, DataDirOption, JsonOption, handles_errors, print_json
from aseptic.cli._record import open_signing, signing_credentials
from aseptic.cli._trust import SessionFileOption, open_trust
from aseptic.clock import WallClock, format_rfc3339, parse_rfc3339
from aseptic.crypto import ALGORITHMS, KeyStore, read_public_key
from aseptic.errors import InputError
from aseptic.service import CA_FILE, RETIRED_CA_FILE, migrate_site_ca

app = typer.Typer(help="The GMP audit trail: show, review, export, verify.", no_args_is_help=True)

WhoOption = Annotated[str | None, typer.Option("--who", help="Only events by this identity.")]
RecordOption = Annotated[
    str | None, typer.Option("--record", help="Only this record id, or a prefix ending in ':' or '*'.")
]
KindOption = Annotated[
    str | None, typer.Option("--kind", help="Only this entry kind (record_change, authentication, ...).")
]
SinceOption = Annotated[str | None, typer.Option("--since", help="From this time (RFC 3339, inclusive).")]
UntilOption = Annotated[str | None, typer.Option("--until", help="Before this time (RFC 3339, exclusive).")]


def _time(text: str | None, option: str) -> datetime | None:
    return None if text is None else parse_rfc3339_option(text, option)


def parse_rfc3339_option(text: str, option: str) -> datetime:
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r}: {exc}", hint="e.g. 2026-03-01T00:00:00Z") from None


def _filter(
    who: str | None, record: str | None, kind: str | None, since: str | None, until: str | None
) -> AuditFilter:
    return AuditFilter(
        who=who, record=record, kind=kind, since=_time(since, "--since"), until=_time(until, "--until")
    )


def _line(event: AuditEvent) -> str:
    when = format_rfc3339(event.when) if event.when else "-"
    what = f"{event.record or '-'} {event.change or ''}".strip()
    values = "" if event.old is None and event.new is None else f" {event.old!r} -> {event.new!r}"
    why = f" ({event.why})" if event.why else ""
    return f"{event.leaf:>7}  {when}  {event.who or '-':<16} {event.kind:<20} {what}{values}{why}"


@app.command("show")
@handles_errors
def show(
    who: WhoOption = None,
    record: RecordOption = None,
    kind: KindOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """List audit events (record changes, identity, logins, policies, reviews, e-signatures), filtered."""
    where = _filter(who, record, kind, since, until)
    with open_signing(data_dir, config) as signing:
        events = read_audit_trail(signing.ledger, where)
    if json_out:
        print_json([event.to_json() for event in events])
        return
    for event in events:
        typer.echo(_line(event))
    typer.echo(f"{len(events)} events", err=True)


@app.command("review")
@handles_errors
def review(
    since: Annotated[str, typer.Option("--since", help="Start of the period reviewed (RFC 3339).")],
    until: Annotated[str, typer.Option("--until", help="End of the period reviewed (RFC 3339, exclusive).")],
    comments_file: Annotated[
        Path, typer.Option("--comments-file", help="Findings/comments of the review (text file).")
    ],
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", help="Your user name (default: the session's).")
    ] = None,
    password_file: Annotated[Path | None, typer.Option("--password-file", help="Password file.")] = None,
    totp_file: Annotated[Path | None, typer.Option("--totp-file", help="TOTP code file.")] = None,
    session_file: SessionFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record a periodic audit-trail review of [--since, --until) with your e-signature ('reviewed')."""
    start, end = parse_rfc3339_option(since, "--since"), parse_rfc3339_option(until, "--until")
    try:
        comments = comments_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read comments from {comments_file}: {exc}") from None
    with open_signing(data_dir, config) as signing:
        reviewer, session_id, password, code = signing_credentials(
            signing, reviewer, session_file, password_file, totp_file
        )
        signer = RecordSigner(
            signing.identities,
            signing.ledger,
            site_key=signing.site_key,
            clock=signing.clock,
            system=signing.system,
        )
        entry, leaf, signature, signature_leaf = sign_review(
            signing.ledger,
            signer,
            clock=signing.clock,
            period_start=start,
            period_end=end,
            reviewer=reviewer,
            comments=comments,
            password=password,
            totp_code=code,
            session_id=session_id,
        )
    if json_out:
        print_json(
            {"review": entry, "leaf": leaf, "signature_leaf": signature_leaf, **signature.to_payload()}
        )
    else:
        typer.echo(f"review of {entry['events_reviewed']} events logged as leaf {leaf}")
        typer.echo(signature.manifestation())


@app.command("export")
@handles_errors
def export(
    out: Annotated[Path, typer.Option("--out", help="Directory for the report and the bundle.")],
    report_format: Annotated[
        str, typer.Option("--format", help="html (always written), or pdf for a PDF beside it.")
    ] = "html",
    who: WhoOption = None,
    record: RecordOption = None,
    kind: KindOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Write audit-report.html (and .pdf) with audit-bundle.json: the entries, proofs and a checkpoint."""
    if report_format not in ("html", "pdf"):
        raise InputError(f"--format {report_format!r} is not html or pdf")
    fmt: Literal["html", "pdf"] = "pdf" if report_format == "pdf" else "html"
    where = _filter(who, record, kind, since, until)
    with open_signing(data_dir, config) as signing:
        result = export_audit_trail(signing.ledger, out, where, report_format=fmt)
    if json_out:
        print_json(
            {
                "files": [str(p) for p in result.files],
                "events": result.events,
                "checkpoint_size": result.checkpoint_size,
            }
        )
    else:
        for path in result.files:
            typer.echo(str(path))
        typer.echo(
            f"{result.events} events, proven against the checkpoint at size {result.checkpoint_size}",
            err=True,
        )


@app.command("verify")
@handles_errors
def verify(
    bundle: Annotated[Path, typer.Argument(help="audit-bundle.json from `aseptic audit export`.")],
    trust: Annotated[list[Path], typer.Option("--trust", help="Trusted site public key file(s) (site.pub).")],
    json_out: JsonOption = False,
) -> None:
    """Verify an exported audit bundle offline, trusting only the key(s) given."""
    try:
        data = bundle.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {bundle}: {exc.strerror}") from None
    verified = verify_audit_bundle(data, [read_public_key(path) for path in trust])
    if json_out:
        print_json(
            {
                "verified": True,
                "events": len(verified.events),
                "signatures": verified.signatures,
                "checkpoint": verified.checkpoint.to_note(),
            }
        )
    else:
        typer.echo(
            f"verified: {len(verified.events)} events ({verified.signatures} e-signatures) in the log of "
            f"{verified.checkpoint.origin} signed at size {verified.checkpoint.size}"
            f" by {verified.checkpoint.key_id}"
        )


key_app = typer.Typer(
    help="The site key: rotate it, with its retirement in the log; migrate the TLS CA to ECDSA P-256.",
    no_args_is_help=True,
)


@key_app.command("rotate")
@handles_errors
def rotate(
    why: Annotated[str, typer.Option("--why", help="The reason for the rotation (required, logged).")],
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", help=f"New key's algorithm ({', '.join(ALGORITHMS)}).")
    ] = None,
    session_file: SessionFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Retire the site key for a new one (administrators). Stop `aseptic serve` first; give auditors
    the new site.pub (the old one keeps verifying the whole log)."""
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise InputError(f"--algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file)
        trust.require_admin_action(actor, "manage_identity")
        directory, origin = trust.data_dir, trust.site_id
    # The decision log (and its ledger) is closed now: the rotation is the ledger's only writer.
    rotation = rotate_site_key(
        KeyStore.open(directory),
        directory,
        clock=WallClock(),
        origin=origin,
        who=actor.name,
        why=why,
        algorithm=algorithm,
    )
    result = {
        "retired": rotation.retired,
        "successor": rotation.successor,
        "leaf": rotation.leaf,
        "retired_at_size": rotation.retired_at_size,
    }
    if json_out:
        print_json(result)
    else:
        typer.echo(f"retired   {rotation.retired} (signs checkpoints up to size {rotation.retired_at_size})")
        typer.echo(f"successor {rotation.successor} (now in {directory / 'site.pub'})")


@key_app.command("migrate-ca")
@handles_errors
def migrate_ca(
    why: Annotated[str, typer.Option("--why", help="The reason for the change (required, logged).")],
    session_file: SessionFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Replace an Ed25519 site CA (sites initialised before ADR 0380; browsers refuse it) by an
    ECDSA P-256 one (administrators). Logged as a change of certificate:site-ca. Client certificates
    of the old CA keep working; restart `aseptic serve` to get a P-256 server certificate."""
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file)
        trust.require_admin_action(actor, "manage_identity")
        migration = migrate_site_ca(
            trust.data_dir,
            site_id=trust.site_id,
            clock=trust.clock,
            record=trust.log.record,
            who=actor.name,
            why=why,
        )
        directory = trust.data_dir
    result = {
        "retired_sha256": migration.retired,
        "successor_sha256": migration.successor,
        "audit_leaf": migration.audit_leaf,
        "ca_file": str(directory / CA_FILE),
        "retired_file": str(directory / RETIRED_CA_FILE),
    }
    if json_out:
        print_json(result)
    else:
        typer.echo(f"retired   CA sha256 {migration.retired} (kept in {directory / RETIRED_CA_FILE})")
        typer.echo(f"successor CA sha256 {migration.successor} (ECDSA P-256, in {directory / CA_FILE})")
        typer.echo(f"logged    audit leaf {migration.audit_leaf}; restart `aseptic serve`")

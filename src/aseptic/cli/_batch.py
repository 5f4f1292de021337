"""``aseptic batch status|review|release|assess``: the QA release gate on the command line.

Signing credentials never come from argv: the password from ``--password-file`` or
``$ASEPTIC_SIGN_PASSWORD``, the TOTP code from ``--totp-file`` or ``$ASEPTIC_SIGN_TOTP`` (as
``aseptic record sign``). A refused review or release exits 1 and prints every reason; it is logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aseptic.audit import AuditTrail, RecordSigner
from aseptic.batch import (
    BatchRecord,
    ReleaseDecision,
    assemble_batch_record,
    assess_finding,
    authorize_release,
    closing_assessments,
    decide_release,
    decide_review,
    describe_batch,
    finding_ref,
    release_batch,
    review_batch,
    verify_batch_evidence,
    write_evidence_package,
)
from aseptic.cli._common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    data_dir_for,
    handles_errors,
    print_json,
    settings_for,
)
from aseptic.cli._findings import MAX_LEAF
from aseptic.cli._record import open_signing, signing_credentials
from aseptic.cli._trust import SessionFileOption, open_trust
from aseptic.crypto import read_public_key
from aseptic.errors import InputError
from aseptic.ledger import Historian, LeafKind

_AREA = "fermentation"  # the plant's one area in the policy entities (aseptic.trust)

app = typer.Typer(
    help="Batch records and the QA release gate: status, review, release, assess.", no_args_is_help=True
)

BatchArg = Annotated[str, typer.Argument(help="The batch id (as in its lineage events).")]
SignerOption = Annotated[
    str | None, typer.Option("--signer", help="Your user name (default: the session's).")
]
PasswordFileOption = Annotated[Path | None, typer.Option("--password-file", help="Password file.")]
TotpFileOption = Annotated[Path | None, typer.Option("--totp-file", help="TOTP code file.")]


def _read(
    directory: Path, batch_id: str
) -> tuple[BatchRecord, list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    with Historian.open(directory) as historian:
        record = assemble_batch_record(historian, batch_id)
        return record, historian.entries(LeafKind.AUDIT), historian.entries(LeafKind.SIGNATURE)


def _status(directory: Path, batch_id: str) -> dict[str, Any]:
    record, audit, signatures = _read(directory, batch_id)
    public = read_public_key(directory / "site.pub")
    return describe_batch(
        record,
        assessments=closing_assessments(record.findings, audit, signatures, trusted_keys=[public]),
        evidence_problems=verify_batch_evidence(directory, public, record),
        trusted_keys=[public],
    )


@app.command("status")
@handles_errors
def status(
    batch_id: BatchArg,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """The batch record, its signatures and what (if anything) blocks its release."""
    directory = data_dir_for(data_dir, settings_for(config))
    result = _status(directory, batch_id)
    if json_out:
        print_json(result)
        return
    record = result["record"]
    typer.echo(f"batch {batch_id}: {result['state']} (record sha256 {result['sha256'][:16]}...)")
    typer.echo(
        f"window: leaves {record['window']['first_leaf']}..{record['window']['last_leaf']};"
        f" {record['start']} .. {record['end']}"
    )
    for phase in record["phases"]:
        typer.echo(f"  phase {phase['phase']}: {phase['start']} .. {phase['end']}")
    typer.echo(f"equipment: {record['equipment']['unit']} ({', '.join(record['equipment']['devices'])})")
    for name, total in record["materials"].items():
        typer.echo(f"material {name}: {total:.3f}")
    typer.echo(f"findings: {len(record['findings'])}, assessed: {len(result['assessments'])}")
    for sig in result["signatures"]:
        typer.echo(
            f"  {sig['meaning']} by {sig['printed_name']} ({sig['signer']}) at {sig['when']}"
            + ("" if sig["current"] else " [older version of the record]")
        )
    for reason in result["release_blocked_by"]:
        typer.echo(f"release blocked: {reason}")


def _report(decision: ReleaseDecision, leaf: int, json_out: bool) -> None:
    if json_out:
        print_json({**decision.to_json(), "signature_leaf": leaf})
    else:
        typer.echo(f"{decision.action} of batch {decision.batch_id} signed by {decision.actor} (leaf {leaf})")


@app.command("review")
@handles_errors
def review(
    batch_id: BatchArg,
    signer: SignerOption = None,
    password_file: PasswordFileOption = None,
    totp_file: TotpFileOption = None,
    session_file: SessionFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Sign the batch record as reviewed (qa_reviewer; password and TOTP)."""
    with open_signing(data_dir, config) as signing:
        directory = data_dir_for(data_dir, settings_for(config))
        name, session_id, password, code = signing_credentials(
            signing, signer, session_file, password_file, totp_file
        )
        record, _, _ = _read(directory, batch_id)
        public = signing.site_key.public
        decision = decide_review(
            record,
            actor=name,
            actor_roles=signing.identities.get(name).roles,
            evidence_problems=verify_batch_evidence(directory, public, record),
            trusted_keys=[public],
        )
        _, leaf = review_batch(
            decision,
            record,
            log=signing.ledger,
            clock=signing.clock,
            signer=RecordSigner(
                signing.identities,
                signing.ledger,
                site_key=signing.site_key,
                clock=signing.clock,
                system=signing.system,
            ),
            password=password,
            totp_code=code,
            session_id=session_id,
        )
    _report(decision, leaf, json_out)


@app.command("release")
@handles_errors
def release(
    batch_id: BatchArg,
    signer: SignerOption = None,
    password_file: PasswordFileOption = None,
    totp_file: TotpFileOption = None,
    session_file: SessionFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Release the batch: sign "approved" (qa_approver, another person than the reviewer, an approved
    release_batch grant, evidence verified, no open finding). A refusal lists every reason."""
    directory = data_dir_for(data_dir, settings_for(config))
    record, audit, signatures = _read(directory, batch_id)
    # The enforcement point first (its decision logged by the trust context), then the signing.
    with open_trust(data_dir, config) as trust:
        who = signer
        if who is None and session_file is not None:
            who = trust.authenticate(session_file).name
        if who is None:
            raise InputError("who releases?", hint="--signer NAME, or --session-file F")
        actor = trust.identities.get(who)
        answer = authorize_release(trust.enforcement_point(), actor, record, area=_AREA, time=trust.now())
        trust.log.flush()
    public = read_public_key(directory / "site.pub")
    with open_signing(data_dir, config) as signing:
        name, session_id, password, code = signing_credentials(
            signing, who, session_file, password_file, totp_file
        )
        decision = decide_release(
            record,
            actor=name,
            actor_roles=signing.identities.get(name).roles,
            roles_of=lambda n: signing.identities.get(n).roles,
            evidence_problems=verify_batch_evidence(directory, public, record),
            assessments=closing_assessments(record.findings, audit, signatures, trusted_keys=[public]),
            trusted_keys=[public],
        )
        _, leaf = release_batch(
            decision,
            record,
            authorize=lambda: answer,
            log=signing.ledger,
            clock=signing.clock,
            signer=RecordSigner(
                signing.identities,
                signing.ledger,
                site_key=signing.site_key,
                clock=signing.clock,
                system=signing.system,
            ),
            password=password,
            totp_code=code,
            session_id=session_id,
        )
    _report(decision, leaf, json_out)


@app.command("assess")
@handles_errors
def assess(
    finding_leaf: Annotated[
        int, typer.Argument(min=0, max=MAX_LEAF, help="The leaf of the finding to close.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why the finding is closed (the investigation).")],
    impact: Annotated[str, typer.Option("--impact", help="The impact on product quality.")],
    signer: SignerOption = None,
    password_file: PasswordFileOption = None,
    totp_file: TotpFileOption = None,
    session_file: SessionFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Close a finding with a signed, documented assessment (meaning "reviewed")."""
    with open_signing(data_dir, config) as signing:
        directory = data_dir_for(data_dir, settings_for(config))
        with Historian.open(directory) as historian:
            entries = historian.entries(LeafKind.FINDING, finding_leaf, finding_leaf + 1)
        if not entries:
            raise InputError(
                f"leaf {finding_leaf} is not a finding", hint="`aseptic batch status B` lists them"
            )
        finding = finding_ref(finding_leaf, entries[0][1])
        name, session_id, password, code = signing_credentials(
            signing, signer, session_file, password_file, totp_file
        )
        trail = AuditTrail(signing.ledger, clock=signing.clock, system=signing.system)
        result = assess_finding(
            finding,
            reason=reason,
            impact=impact,
            trail=trail,
            signer=RecordSigner(
                signing.identities,
                signing.ledger,
                site_key=signing.site_key,
                clock=signing.clock,
                system=signing.system,
            ),
            assessor=name,
            password=password,
            totp_code=code,
            session_id=session_id,
        )
    if json_out:
        print_json(
            {
                "finding_leaf": finding_leaf,
                "audit_leaf": result.audit_leaf,
                "signature_leaf": result.signature_leaf,
            }
        )
    else:
        typer.echo(
            f"finding {finding_leaf} closed by {name}: audit leaf {result.audit_leaf},"
            f" signature leaf {result.signature_leaf}"
        )


@app.command("package")
@handles_errors
def package(
    batch_id: BatchArg,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for report.html, report.pdf, bundle.json, site.pub.")
    ],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Write the batch's evidence package: the HTML and PDF reports and the offline-verifiable bundle."""
    with open_signing(data_dir, config) as signing:
        directory = data_dir_for(data_dir, settings_for(config))
        result = write_evidence_package(
            signing.ledger, directory, batch_id, out, clock=signing.clock, actor="cli:batch-package"
        )
    paths = {
        "report": str(result.report),
        "pdf": str(result.pdf),
        "bundle": str(result.bundle),
        "site_pub": str(result.site_pub),
    }
    if json_out:
        print_json(paths)
    else:
        typer.echo(
            f"report {result.report}; verify offline: aseptic ledger verify --bundle {result.bundle}"
            f" --trust {result.site_pub}"
        )

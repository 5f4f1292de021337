"""``export_audit_trail``: the report (HTML, optionally PDF) and the bundle, written to a directory.

The events are read from the ledger, a checkpoint covering them is taken (the latest one if it
covers every event, else a new one is signed), and each event's inclusion proof is computed
against it. The files are written atomically (temporary name, then rename).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aseptic.audit._bundle import build_audit_bundle
from aseptic.audit._report import render_html, render_pdf
from aseptic.audit._trail import AuditFilter, read_audit_trail
from aseptic.clock import format_rfc3339
from aseptic.errors import BackendError
from aseptic.ledger import KEY_RECORD, Ledger

__all__ = ["BUNDLE_FILE", "ExportResult", "export_audit_trail"]

BUNDLE_FILE = "audit-bundle.json"
REPORT_STEM = "audit-report"


@dataclass(frozen=True)
class ExportResult:
    """What was written: the files, how many events, and the checkpoint's tree size."""

    files: tuple[Path, ...]
    events: int
    checkpoint_size: int


def export_audit_trail(
    ledger: Ledger, out: Path, where: AuditFilter, *, report_format: Literal["html", "pdf"] = "html"
) -> ExportResult:
    """Write ``audit-bundle.json``, ``audit-report.html`` and (``pdf``) ``audit-report.pdf`` to ``out``.

    Raises:
        BackendError: the directory or a file cannot be written.
        RollbackError: a new checkpoint was needed and the clock is behind the latest one.
    """
    events = read_audit_trail(ledger, where)
    latest = ledger.latest_checkpoint()
    needed = max((e.leaf + 1 for e in events), default=0)
    checkpoint = latest if latest is not None and latest.size >= needed else ledger.checkpoint()
    filter_json = {
        "who": where.who,
        "record": where.record,
        "kind": where.kind,
        "since": format_rfc3339(where.since) if where.since else None,
        "until": format_rfc3339(where.until) if where.until else None,
    }
    rotations = read_audit_trail(ledger, AuditFilter(record=KEY_RECORD))
    bundle = build_audit_bundle(
        events, checkpoint, ledger.inclusion_proof, filter_json=filter_json, key_rotations=rotations
    )
    title = f"Audit trail of {checkpoint.origin}"
    page = render_html(events, checkpoint, title=title)
    files = {BUNDLE_FILE: bundle, f"{REPORT_STEM}.html": page.encode("utf-8")}
    if report_format == "pdf":
        files[f"{REPORT_STEM}.pdf"] = render_pdf(events, checkpoint, title=title)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            temporary = out / f".{name}.tmp"
            temporary.write_bytes(data)
            os.replace(temporary, out / name)
    except OSError as exc:
        raise BackendError(f"cannot write the audit export to {out}: {exc.strerror}") from None
    return ExportResult(tuple(out / name for name in files), len(events), checkpoint.size)

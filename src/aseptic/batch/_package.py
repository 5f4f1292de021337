"""The evidence package of a batch for QA and inspectors: ``report.html`` and ``report.pdf``
(summary, key trends, deviations, findings and their assessments, the audit trail of changes,
signatures with printed name, UTC time and meaning) beside the offline-verifiable bundle
(``bundle.json``) and the site's public key (``site.pub``) it verifies with. The reports' SHA-256
digests are logged (an ``evidence_package`` audit entry naming the batch) before the bundle is
exported, so the bundle proves which report files belong to it.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to SVG text
import matplotlib.pyplot as plt

from aseptic.batch._assess import Assessment, closing_assessments, finding_record_id
from aseptic.batch._record import _EVER, BatchRecord, assemble_batch_record, batch_record_id
from aseptic.batch._report_pdf import render_report_pdf, trend_png
from aseptic.clock import Clock, format_rfc3339
from aseptic.crypto import read_public_key
from aseptic.errors import BackendError
from aseptic.ledger import Historian, LeafKind, Ledger, StoredReading, export_bundle

__all__ = ["PACKAGE_ENTRY", "EvidencePackage", "render_report", "trend_svg", "write_evidence_package"]

PACKAGE_ENTRY = "evidence_package"  # the audit entry carrying the reports' digests

_KEY_TAGS = ("temperature_k", "ph", "dissolved_o2_mg_per_l", "sugar_feed_l_per_h", "phase_index")


@dataclass(frozen=True)
class EvidencePackage:
    """Where the package was written."""

    report: Path
    bundle: Path
    site_pub: Path
    pdf: Path


def trend_svg(tag: str, series: Sequence[StoredReading]) -> str:
    """One tag's trend over the batch as an SVG document (text)."""
    points = sorted((r.reading.time, r.reading.value) for r in series)
    figure, axes = plt.subplots(figsize=(7, 2.2))
    try:
        origin = points[0][0] if points else None
        hours = [(t - origin).total_seconds() / 3600.0 for t, _ in points] if origin else []
        axes.plot(hours, [v for _, v in points], linewidth=1.2)
        axes.set_title(tag, fontsize=9)
        axes.set_xlabel("hours into the batch", fontsize=7)
        axes.tick_params(labelsize=7)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body or '<tr><td colspan=99>none</td></tr>'}</table>"


def render_report(
    record: BatchRecord,
    *,
    assessments: Mapping[int, Assessment],
    changes: Sequence[Mapping[str, Any]],
    trends: Mapping[str, str],
    generated: str,
) -> str:
    """The HTML report (self-contained: no script, no external resource)."""
    content = record.content()
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Batch record {html.escape(record.batch_id)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #999;padding:2px 6px;font-size:12px;text-align:left}</style></head><body>",
        f"<h1>Batch record {html.escape(record.batch_id)}</h1>",
        f"<p>Record sha256 <code>{record.digest}</code>; generated {html.escape(generated)} (UTC).</p>",
        "<h2>Summary</h2>",
        _table(
            ("window (leaves)", "start", "end", "unit", "devices"),
            [
                (
                    f"{record.first_leaf}..{record.last_leaf}",
                    content["start"],
                    content["end"],
                    record.unit or "",
                    ", ".join(record.devices),
                )
            ],
        ),
        _table(("phase", "start", "end"), [(p["phase"], p["start"], p["end"]) for p in content["phases"]]),
        _table(("material", "total"), [(k, f"{v:.3f}") for k, v in content["materials"].items()]),
        _table(("tag", "readings"), list(content["readings"].items())),
        _table(("genealogy", "names"), [(k, ", ".join(v)) for k, v in content["genealogy"].items()]),
        "<h2>Key trends</h2>",
        *trends.values(),
        "<h2>Deviations</h2>",
        _table(
            ("leaf", "record", "change", "who", "why"),
            [
                (d.get("leaf"), d.get("record"), d.get("change"), d.get("who"), d.get("why"))
                for d in record.deviations
            ],
        ),
        "<h2>Findings and their assessments</h2>",
        _table(
            ("leaf", "detector", "technique", "time", "status", "assessor", "reason", "impact"),
            [
                (
                    f.leaf,
                    f.detector,
                    f.technique or "",
                    f.time,
                    "closed" if f.leaf in assessments else "OPEN",
                    *(
                        (a.signature.printed_name, a.reason, a.impact)
                        if (a := assessments.get(f.leaf))
                        else ("", "", "")
                    ),
                )
                for f in record.findings
            ],
        ),
        "<h2>Audit trail of changes</h2>",
        _table(
            ("leaf", "record", "change", "who", "when", "why"),
            [
                (c.get("leaf"), c.get("record"), c.get("change"), c.get("who"), c.get("when"), c.get("why"))
                for c in changes
            ],
        ),
        "<h2>Signatures</h2>",
        _table(
            ("leaf", "meaning", "printed name", "user", "time (UTC)", "record sha256", "current version"),
            [
                (
                    leaf,
                    "approved for release" if s.meaning == "approved" else s.meaning,
                    s.printed_name,
                    s.signer,
                    format_rfc3339(s.when),
                    s.record_sha256,
                    "yes" if s.record_sha256 == record.digest else "no (older version)",
                )
                for leaf, s in record.signatures
            ],
        ),
        "<p>The evidence bundle <code>bundle.json</code> beside this report verifies offline: "
        "<code>aseptic ledger verify --bundle bundle.json --trust site.pub</code>.</p></body></html>",
    ]
    return "\n".join(parts)


def write_evidence_package(
    ledger: Ledger, data_dir: Path, batch_id: str, out_dir: Path, *, clock: Clock, actor: str
) -> EvidencePackage:
    """Write ``report.html``, ``report.pdf``, ``bundle.json`` and ``site.pub`` of batch ``batch_id``
    into ``out_dir`` (the reports' digests logged through ``ledger`` before the bundle is exported).

    Raises:
        ConfigError: no such batch, or still open (from the bundle export).
        IntegrityError: a proof does not verify while exporting.
        BackendError: the files cannot be written.
    """
    public = read_public_key(data_dir / "site.pub")
    with Historian.open(data_dir) as historian:
        record = assemble_batch_record(historian, batch_id)
        audit, signatures = historian.entries(LeafKind.AUDIT), historian.entries(LeafKind.SIGNATURE)
        trends, images = {}, {}
        for tag in (t for t in _KEY_TAGS if t in record.readings):
            last = record.last_leaf if record.last_leaf is not None else 1 << 62
            series = [r for r in historian.query(tag, *_EVER) if record.first_leaf <= r.leaf <= last]
            trends[tag] = trend_svg(tag, series)
            images[tag] = trend_png(tag, series)
    assessments = closing_assessments(record.findings, audit, signatures, trusted_keys=[public])
    related = {batch_record_id(batch_id), *(finding_record_id(f.leaf) for f in record.findings)}
    changes = []
    for leaf, payload in audit:
        fields = json.loads(payload)
        if not isinstance(fields, dict) or fields.get("entry") != "record_change":
            continue
        in_window = record.first_leaf <= leaf <= (record.last_leaf or leaf)
        if in_window or fields.get("record") in related:
            changes.append({"leaf": leaf, **fields})
    generated = clock.now()
    report = render_report(
        record, assessments=assessments, changes=changes, trends=trends, generated=format_rfc3339(generated)
    )
    pdf = render_report_pdf(
        record, assessments=assessments, changes=changes, trends=images, generated=generated
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.html").write_text(report, encoding="utf-8")
        (out_dir / "report.pdf").write_bytes(pdf)
        shutil.copyfile(data_dir / "site.pub", out_dir / "site.pub")
    except OSError as exc:
        raise BackendError(f"cannot write the evidence package to {out_dir}: {exc.strerror}") from None
    ledger.append_entry(
        LeafKind.AUDIT,
        {
            "entry": PACKAGE_ENTRY,
            "batch_id": batch_id,
            "actor": actor,
            "record_sha256": record.digest,
            "renderings": [
                {"name": "report.html", "sha256": hashlib.sha256(report.encode("utf-8")).hexdigest()},
                {"name": "report.pdf", "sha256": hashlib.sha256(pdf).hexdigest()},
            ],
            "time": format_rfc3339(generated),
        },
    )
    export_bundle(ledger, data_dir, batch_id, out_dir / "bundle.json", clock=clock, actor=actor)
    return EvidencePackage(
        out_dir / "report.html", out_dir / "bundle.json", out_dir / "site.pub", out_dir / "report.pdf"
    )

"""The batch report as a PDF (fpdf2, core fonts, A4): the same sections as ``report.html`` - summary,
key trends, deviations, findings and their assessments, the audit trail of changes, and the
signatures with printed name, UTC time and meaning - for inspectors who file paper.

Reproducible: the creation date is the report's generation time, given, never the wall clock.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display
import matplotlib.pyplot as plt
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from aseptic.batch._assess import Assessment
from aseptic.batch._record import BatchRecord
from aseptic.clock import format_rfc3339
from aseptic.ledger import StoredReading

__all__ = ["render_report_pdf", "trend_png"]


def trend_png(tag: str, series: Sequence[StoredReading]) -> bytes:
    """One tag's trend over the batch as a PNG image (for the PDF)."""
    points = sorted((r.reading.time, r.reading.value) for r in series)
    figure, axes = plt.subplots(figsize=(7, 2.0), dpi=110)
    try:
        origin = points[0][0] if points else None
        hours = [(t - origin).total_seconds() / 3600.0 for t, _ in points] if origin else []
        axes.plot(hours, [v for _, v in points], linewidth=1.2)
        axes.set_title(tag, fontsize=9)
        axes.set_xlabel("hours into the batch", fontsize=7)
        axes.tick_params(labelsize=7)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(figure)
    return buffer.getvalue()


def _latin1(value: Any) -> str:
    return str(value).encode("latin-1", "replace").decode("latin-1")


class _Report:
    def __init__(self, created: datetime) -> None:
        self.pdf = FPDF(orientation="L", unit="mm", format="A4")
        self.pdf.set_auto_page_break(auto=True, margin=12)
        self.pdf.set_creation_date(created)
        self.pdf.add_page()

    def heading(self, text: str, size: int = 11) -> None:
        self.pdf.set_font("Helvetica", "B", size)
        self.pdf.cell(0, 7, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def line(self, text: str) -> None:
        self.pdf.set_font("Helvetica", "", 8)
        self.pdf.multi_cell(0, 4.5, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.pdf.set_font("Helvetica", "", 7)
        with self.pdf.table(text_align="LEFT", line_height=3.8) as table:
            head = table.row()
            for name in headers:
                head.cell(_latin1(name))
            for values in rows or [["none", *[""] * (len(headers) - 1)]]:
                row = table.row()
                for value in values:
                    row.cell(_latin1("" if value is None else value))
        self.pdf.ln(2)


def render_report_pdf(
    record: BatchRecord,
    *,
    assessments: Mapping[int, Assessment],
    changes: Sequence[Mapping[str, Any]],
    trends: Mapping[str, bytes],
    generated: datetime,
) -> bytes:
    """The PDF report of ``record`` (trends are PNG images, e.g. from ``trend_png``)."""
    content = record.content()
    report = _Report(generated)
    report.heading(f"Batch record {record.batch_id}", 14)
    report.line(f"Record sha256 {record.digest}; generated {format_rfc3339(generated)} (UTC).")
    report.heading("Summary")
    report.table(
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
    )
    report.table(("phase", "start", "end"), [(p["phase"], p["start"], p["end"]) for p in content["phases"]])
    report.table(("material", "total"), [(k, f"{v:.3f}") for k, v in content["materials"].items()])
    report.table(("genealogy", "names"), [(k, ", ".join(v)) for k, v in content["genealogy"].items()])
    report.heading("Key trends")
    for image in trends.values():
        report.pdf.image(io.BytesIO(image), w=170)
    report.heading("Deviations")
    report.table(
        ("leaf", "record", "change", "who", "why"),
        [
            (d.get("leaf"), d.get("record"), d.get("change"), d.get("who"), d.get("why"))
            for d in record.deviations
        ],
    )
    report.heading("Findings and their assessments")
    rows = []
    for finding in record.findings:
        assessment = assessments.get(finding.leaf)
        rows.append(
            (
                finding.leaf,
                finding.detector,
                finding.technique or "",
                finding.time,
                "closed" if assessment else "OPEN",
                assessment.signature.printed_name if assessment else "",
                assessment.reason if assessment else "",
                assessment.impact if assessment else "",
            )
        )
    report.table(("leaf", "detector", "technique", "time", "status", "assessor", "reason", "impact"), rows)
    report.heading("Audit trail of changes")
    report.table(
        ("leaf", "record", "change", "who", "when", "why"),
        [
            (c.get("leaf"), c.get("record"), c.get("change"), c.get("who"), c.get("when"), c.get("why"))
            for c in changes
        ],
    )
    report.heading("Signatures")
    report.table(
        ("leaf", "meaning", "printed name", "user", "time (UTC)", "current version"),
        [
            (
                leaf,
                "approved for release" if s.meaning == "approved" else s.meaning,
                s.printed_name,
                s.signer,
                format_rfc3339(s.when),
                "yes" if s.record_sha256 == record.digest else "no (older version)",
            )
            for leaf, s in record.signatures
        ],
    )
    report.line(
        "The evidence bundle bundle.json beside this report verifies offline: "
        "aseptic ledger verify --bundle bundle.json --trust site.pub. The bundle carries this report's "
        "SHA-256 in its evidence_package record."
    )
    return bytes(report.pdf.output())

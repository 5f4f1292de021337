"""Human-readable audit-trail reports: HTML (always) and PDF (fpdf2), from verified events.

The report shows every event in log order with who, what (record, change, old -> new), when (UTC
and clock sync state), why, and the e-signature manifestations in full (11.50: printed name,
time, meaning). It is a rendering for people; the bundle beside it is the evidence, and the
report names the checkpoint (size, root, key) that the bundle proves the events against.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from aseptic.audit._esign import ELECTRONIC_SIGNATURE
from aseptic.audit._trail import AuditEvent
from aseptic.clock import format_rfc3339
from aseptic.ledger import Checkpoint

__all__ = ["render_html", "render_pdf"]

_COLUMNS = ("leaf", "when (UTC)", "who", "kind", "record", "change", "old -> new", "why")


def _rows(events: Sequence[AuditEvent]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for e in events:
        sync = e.payload.get("clock_sync")
        when = (format_rfc3339(e.when) if e.when else "?") + (f" [{sync}]" if sync else "")
        if e.kind == ELECTRONIC_SIGNATURE:
            p = e.payload
            values = (
                f"{p.get('meaning')} by {p.get('printed_name')}; sha256 {str(p.get('record_sha256'))[:16]}..."
                f"; factors {','.join(p.get('factors', []))}"
            )
        else:
            values = f"{_short(e.old)} -> {_short(e.new)}"
        rows.append(
            (str(e.leaf), when, e.who or "", e.kind, e.record or "", e.change or "", values, e.why or "")
        )
    return rows


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _header(checkpoint: Checkpoint, title: str) -> list[str]:
    return [
        title,
        f"origin {checkpoint.origin}; checkpoint size {checkpoint.size}, "
        f"time {format_rfc3339(checkpoint.time)}",
        f"root {bytes(checkpoint.root).hex()}",
        f"signed by {checkpoint.key_id} ({checkpoint.algorithm})",
    ]


def render_html(events: Sequence[AuditEvent], checkpoint: Checkpoint, *, title: str) -> str:
    """A self-contained HTML page (no scripts, no external resources)."""
    head = _header(checkpoint, title)
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;font-size:12px}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:2px 4px;vertical-align:top}th{background:#eee}</style>",
        "</head><body>",
        f"<h1>{html.escape(head[0])}</h1>",
        *(f"<p>{html.escape(line)}</p>" for line in head[1:]),
        f"<p>{len(events)} events. Verify offline: "
        "<code>aseptic audit verify BUNDLE --trust site.pub</code></p>",
        "<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in _COLUMNS),
        "</tr></thead><tbody>",
    ]
    for row in _rows(events):
        lines.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>")
    lines += ["</tbody></table>", "</body></html>", ""]
    return "\n".join(lines)


def render_pdf(events: Sequence[AuditEvent], checkpoint: Checkpoint, *, title: str) -> bytes:
    """The same report as a PDF (A4 landscape, core fonts; non-Latin-1 text is replaced by '?')."""
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_creation_date(checkpoint.time)  # reproducible: the checkpoint's time, not the wall clock
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    head = _header(checkpoint, title)
    pdf.cell(0, 8, _latin1(head[0]), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 8)
    for line in head[1:]:
        pdf.cell(0, 5, _latin1(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    widths = (12, 42, 24, 28, 45, 22, 62, 38)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=4) as table:
        header = table.row()
        for column in _COLUMNS:
            header.cell(column)
        for values in _rows(events):
            row = table.row()
            for cell in values:
                row.cell(_latin1(cell))
    return bytes(pdf.output())


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")

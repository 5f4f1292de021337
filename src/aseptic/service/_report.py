"""The demo's human-readable report: one self-contained HTML page with inline SVG plots.

Everything is embedded (no CDN, no external file), so the page works offline and can be attached
to a deviation record as it is.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
from matplotlib.figure import Figure

__all__ = ["BatchSeries", "render_report_html"]


@dataclass
class BatchSeries:
    """What the report plots for one batch: a few key tags and the detector statistic."""

    batch_id: str
    time_h: list[float]
    tags: dict[str, list[float]]
    statistic: list[float]
    limit: float
    statistic_name: str
    attack_window_h: tuple[float, float] | None = None
    alert_times_h: list[float] = field(default_factory=list)


def _svg_of(series: BatchSeries) -> str:
    rows = len(series.tags) + 1
    # Figure without pyplot: no global state and no display backend needed.
    fig = Figure(figsize=(9.5, 1.7 * rows))
    axes = fig.subplots(rows, 1, sharex=True)
    axes_list = list(axes) if rows > 1 else [axes]
    for ax, (name, values) in zip(axes_list, series.tags.items(), strict=False):
        ax.plot(series.time_h, values, lw=0.9, color="#1f4e79")
        ax.set_ylabel(name, fontsize=7)
    ax = axes_list[-1]
    ax.plot(series.time_h, series.statistic, lw=0.9, color="#333333", label=series.statistic_name)
    ax.axhline(series.limit, color="#c0392b", lw=0.8, ls="--", label="limit")
    ax.set_yscale("log")
    ax.set_ylabel(series.statistic_name, fontsize=7)
    ax.set_xlabel("batch time (h)")
    for axis in axes_list:
        axis.tick_params(labelsize=7)
        if series.attack_window_h is not None:
            axis.axvspan(*series.attack_window_h, color="#f5b041", alpha=0.25, lw=0)
        for alert in series.alert_times_h:
            axis.axvline(alert, color="#c0392b", lw=0.9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buffer = io.StringIO()
    # A fixed hash salt and no date keep the SVG byte-identical for identical data.
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


COLUMNS = ("time_h", "detector", "score", "limit", "tags", "technique")
_TECHNIQUE_NAMES = {
    "T0815": "Denial of View",
    "T0831": "Manipulation of Control",
    "T0832": "Manipulation of View",
    "T0836": "Modify Parameter",
    "T0856": "Spoofed Reporting Message",
}


def _contributions(finding: Mapping[str, Any]) -> str:
    """``tag 62% (expected 6.50, observed 6.62)`` for the top contributors."""
    parts = []
    pairs = finding.get("contributions") or [[t, None] for t in finding.get("tags", [])]
    expected = finding.get("expected") or []
    observed = finding.get("observed") or []
    for i, (tag, share) in enumerate(pairs[:3]):
        text = tag if share is None else f"{tag} {100 * share:.0f}%"
        e = expected[i] if i < len(expected) else None
        o = observed[i] if i < len(observed) else None
        if e is not None and o is not None:
            text += f" (expected {e:.4g}, observed {o:.4g})"
        elif o is not None:
            text += f" (observed {o:.4g})"
        parts.append(text)
    return "; ".join(parts)


def _technique(finding: Mapping[str, Any]) -> str:
    technique = finding.get("technique")
    name = f"{technique} {_TECHNIQUE_NAMES.get(technique, '')}".strip() if technique else "-"
    if finding.get("cause") == "process fault":
        return f"process fault {finding.get('process_fault')} (if not: {name})"
    return name


def render_report_html(report: Mapping[str, Any], series: Sequence[BatchSeries]) -> str:
    """Render ``report`` (the content of report.json) and the plotted ``series`` as one HTML page."""
    matplotlib.rcParams["svg.hashsalt"] = "aseptic"
    sections = []
    for batch, plotted in zip(report["batches"], series, strict=True):
        attack = batch.get("attack")
        attack_text = (
            f"{attack['technique']} {attack['kind']} on <code>{html.escape(attack['tag'])}</code> "
            f"from {attack['start_h']:.1f} h to {attack['end_h']:.1f} h"
            if attack
            else "none (clean batch)"
        )
        ttd = batch.get("time_to_detect_h")
        verdict = (
            f"detected after {ttd:.2f} h"
            if batch.get("detected") and ttd is not None
            else ("findings raised" if batch.get("findings") else "no findings")
        )
        findings = [
            {
                "time_h": f"{f['time_h']:.1f}",
                "detector": f["detector"],
                "score": f"{f['score']:.3g}",
                "limit": f"{f['limit']:.3g}",
                "tags": _contributions(f),
                "technique": _technique(f),
            }
            for f in batch.get("findings", [])[:20]
        ]
        sections.append(
            f"<section><h2>Batch {html.escape(batch['id'])}</h2>"
            f"<p>Attack: {attack_text}. Result: <b>{html.escape(verdict)}</b>.</p>"
            f"{_svg_of(plotted)}"
            f"{_table(findings, COLUMNS) if findings else ''}"
            "</section>"
        )
    ledger = report["ledger"]
    telemetry = report["telemetry"]
    status = "verified" if ledger["verified"] else "VERIFICATION FAILED"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Aseptic demo report</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}"
        "code{background:#f3f3f3;padding:0 3px}svg{max-width:100%;height:auto}"
        "</style></head><body><h1>Aseptic demo: chain of custody from sensor to evidence</h1>"
        f"<p>Ledger: {ledger['size']} leaves, root <code>{html.escape(ledger['root'])}</code>, "
        f"<b>{status}</b>.</p>"
        f"<p>Telemetry: {telemetry['readings']} readings in {telemetry['envelopes']} signed envelopes "
        f"logged ({telemetry.get('published', '?')} published, {telemetry.get('received', '?')} "
        f"received); {telemetry['rejected']} rejected, {telemetry['quarantined']} quarantined.</p>"
        + "".join(sections)
        + "<p>Shaded: the attack window. Red lines: alerts (a Finding opening an alarm episode).</p>"
        + "</body></html>"
    )

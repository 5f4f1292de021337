"""The campaign's files: ``campaign.json`` and ``report.html`` with inline SVG plots (matplotlib).

Plots: technique coverage heat map (technique x scenario: executed, detected), time-to-detect per
scenario (per-batch points with the median), and impact (titre loss) against detection rate.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

__all__ = ["render_html", "write_campaign"]


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _coverage_plot(report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [(s["id"], s["techniques"], 2 if s["detected"] else 1) for s in report["scenarios"]]
    rows += [(n["id"], n["techniques"], 0) for n in report["not_executed"]]
    techniques = sorted({t for _, ts, _ in rows for t in ts})
    grid = np.full((len(techniques), len(rows)), np.nan)
    for j, (_, ts, level) in enumerate(rows):
        for t in ts:
            grid[techniques.index(t), j] = level
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(rows) + 2), max(3.0, 0.3 * len(techniques) + 1)))
    cmap = matplotlib.colors.ListedColormap(["#bbbbbb", "#d9534f", "#5cb85c"])
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=2, aspect="auto")
    ax.set_xticks(range(len(rows)), [r[0] for r in rows], rotation=90, fontsize=7)
    ax.set_yticks(range(len(techniques)), techniques, fontsize=7)
    ax.set_title("technique coverage: grey not executed, red missed / not scored, green detected")
    return _svg(fig)


def _ttd_plot(report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [s for s in report["scenarios"] if s["batch_ttd_h"]]
    fig, ax = plt.subplots(figsize=(7.0, max(2.5, 0.3 * len(rows) + 1)))
    for i, s in enumerate(rows):
        ax.scatter(s["batch_ttd_h"], [i] * len(s["batch_ttd_h"]), s=12, color="#337ab7")
        if s["median_ttd_h"] is not None:
            ax.scatter([s["median_ttd_h"]], [i], marker="|", s=200, color="black")
    ax.set_yticks(range(len(rows)), [s["id"] for s in rows], fontsize=7)
    ax.set_xlabel("time to detect from the first malicious step (h), expected detectors")
    return _svg(fig)


def _impact_plot(report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for s in report["scenarios"]:
        rate = s["detection_rate"]
        loss = s["impact"]["titre_loss_g_per_l"]
        if rate is None or loss is None:
            continue
        ax.scatter([rate], [loss], color="#d9534f" if not s["detected"] else "#5cb85c")
        ax.annotate(s["id"], (rate, loss), fontsize=6)
    ax.set_xlabel("detection rate")
    ax.set_ylabel("titre loss vs matched clean batch (g/L)")
    return _svg(fig)


def render_html(report: dict[str, Any]) -> str:
    """The HTML report (self-contained, inline SVG)."""
    esc = html.escape
    lines = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Aseptic campaign</title>",
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}"
        "table{border-collapse:collapse}</style></head><body><h1>Campaign</h1>",
        "<table><tr><th>scenario</th><th>techniques</th><th>batches</th><th>detected</th><th>rate</th>"
        "<th>median TTD h</th><th>p95 TTD h</th><th>FA /100 h</th><th>titre loss g/L</th>"
        "<th>harvest kg loss</th><th>min out of spec</th><th>QA reject</th><th>platform impact</th></tr>",
    ]
    for s in report["scenarios"]:
        imp = s["impact"]
        cells = [
            s["id"],
            ", ".join(s["techniques"]),
            s["batches"],
            "not evaluable" if s["detected"] is None else ("yes" if s["detected"] else "no"),
            s["detection_rate"],
            s["median_ttd_h"],
            s["p95_ttd_h"],
            s["false_alarms_per_100h"],
            imp["titre_loss_g_per_l"],
            imp["harvest_kg_loss"],
            imp["minutes_out_of_spec"],
            imp["qa_reject"],
            ", ".join(f"{k}={v}" for k, v in sorted(imp.get("platform", {}).items())),
        ]
        lines.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
    cov, totals = report.get("coverage", {}), report.get("totals", {})
    lines.append(
        f"</table><p>Techniques detected / executed: {esc(str(cov.get('techniques_detected')))} / "
        f"{esc(str(cov.get('techniques_executed')))}; missed: "
        f"{esc(', '.join(cov.get('missed', [])) or 'none')}. Scenarios detected: "
        f"{esc(str(cov.get('scenarios_detected')))} of {esc(str(cov.get('scenarios_evaluated')))} "
        f"evaluated. Median / p95 time to detect: {esc(str(totals.get('median_ttd_h')))} / "
        f"{esc(str(totals.get('p95_ttd_h')))} h; process false alarms per 100 clean batch-hours: "
        f"{esc(str(totals.get('process_false_alarms_per_100h')))}.</p>"
    )
    lines.append("<h2>Not executed</h2><ul>")
    for n in report["not_executed"]:
        lines.append(f"<li>{esc(n['id'])}: {esc('; '.join(n['reasons']))}</li>")
    lines.append("</ul><h2>Technique coverage</h2>")
    lines.append(_coverage_plot(report))
    lines.append("<h2>Time to detect</h2>")
    lines.append(_ttd_plot(report))
    lines.append("<h2>Impact vs detection</h2>")
    lines.append(_impact_plot(report))
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def write_campaign(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``out/campaign.json`` and ``out/report.html``; return both paths.

    Raises:
        OSError: ``out`` cannot be written.
    """
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "campaign.json", out / "report.html"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path

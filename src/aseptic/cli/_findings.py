"""``aseptic findings ...``: the findings in the ledger, listed or exported for the SOC."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

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
from aseptic.clock import format_rfc3339
from aseptic.errors import BackendError, ConfigError, InputError
from aseptic.ledger import Historian, LeafKind
from aseptic.siem import Alert, SyslogForwarder, alerts_from_entries, format_cef, format_syslog, stix_bundle

app = typer.Typer(help="Findings in the ledger: list them, export them for the SOC.", no_args_is_help=True)

MAX_LEAF = 2**63 - 1  # the largest SQLite INTEGER
SinceOption = Annotated[int, typer.Option("--since-leaf", help="Only findings at this ledger leaf or later.")]


def _alerts(data_dir: Path, since_leaf: int) -> list[Alert]:
    if since_leaf < 0:
        raise InputError(f"--since-leaf {since_leaf} is negative")
    if since_leaf > MAX_LEAF:  # SQLite cannot even compare it (OverflowError)
        raise InputError(f"--since-leaf {since_leaf} is past any leaf (at most {MAX_LEAF})")
    with Historian.open(data_dir) as historian:
        return alerts_from_entries(historian.entries(LeafKind.FINDING, since_leaf))


def _row(alert: Alert) -> dict[str, object]:
    return {
        "leaf": alert.leaf,
        "time": format_rfc3339(alert.time) if alert.time else None,
        "detector": alert.detector,
        "technique": alert.technique,
        "technique_name": alert.technique_name,
        "severity": alert.severity,
        "batch_id": alert.batch_id,
        "tags": list(alert.tags),
        "summary": alert.summary,
    }


@app.command("list")
@handles_errors
def list_findings(
    since_leaf: SinceOption = 0,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The findings (alarms) in the ledger, oldest first, with their leaf, severity and technique."""
    alerts = _alerts(data_dir_for(data_dir, settings_for(config)), since_leaf)
    if as_json:
        print_json([_row(alert) for alert in alerts])
        return
    for alert in alerts:
        when = format_rfc3339(alert.time) if alert.time else "-"
        print(f"leaf {alert.leaf:>7}  {when}  sev {alert.severity:>2}  {alert.summary}")
    print(f"{len(alerts)} findings")


@app.command("export")
@handles_errors
def export(
    out: Annotated[Path, typer.Option("--out", help="File to write (overwritten).")],
    fmt: Annotated[
        str, typer.Option("--format", help="cef (one CEF line per finding) or stix (a STIX 2.1 bundle).")
    ] = "stix",
    since_leaf: SinceOption = 0,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the ledger's findings as CEF lines or a STIX 2.1 bundle."""
    settings = settings_for(config)
    alerts = _alerts(data_dir_for(data_dir, settings), since_leaf)
    site = settings.site.name
    if fmt == "cef":
        text = "".join(format_cef(alert, site=site) + "\n" for alert in alerts)
    elif fmt == "stix":
        text = json.dumps(stix_bundle(alerts, site=site, now=datetime.now(UTC)), indent=2) + "\n"
    else:
        raise InputError(f"--format {fmt!r} is not cef or stix")
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BackendError(f"cannot write {out}: {exc.strerror}") from None
    stderr.print(f"wrote {len(alerts)} findings to {out} ({fmt})", highlight=False)


@app.command("forward")
@handles_errors
def forward(
    target: Annotated[str, typer.Option("--syslog", help="Collector HOST:PORT (a local relay or the SIEM).")],
    transport: Annotated[str, typer.Option("--transport", help="tcp (RFC 6587 framing) or udp.")] = "tcp",
    since_leaf: SinceOption = 0,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Send the ledger's findings as CEF over RFC 5424 syslog; prints the next --since-leaf to use."""
    settings = settings_for(config)
    host, _, port_text = target.rpartition(":")
    if host.startswith("[") and host.endswith("]"):  # [::1]:514, the usual way to write IPv6 HOST:PORT
        host = host[1:-1]
    if not host or not port_text.isdigit():
        raise ConfigError(f"--syslog {target!r} is not HOST:PORT")
    if transport not in ("tcp", "udp"):
        raise ConfigError(f"--transport {transport!r} is not tcp or udp")
    chosen: Literal["tcp", "udp"] = "tcp" if transport == "tcp" else "udp"
    alerts = _alerts(data_dir_for(data_dir, settings), since_leaf)
    hostname = socket.gethostname()
    messages = [
        format_syslog(format_cef(alert, site=settings.site.name), hostname=hostname, severity=alert.severity)
        for alert in alerts
    ]
    sent = SyslogForwarder(host, int(port_text), transport=chosen).send(messages)
    next_leaf = alerts[-1].leaf + 1 if alerts else since_leaf
    print(json.dumps({"sent": sent, "next_since_leaf": next_leaf}))

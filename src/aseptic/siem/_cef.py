"""ArcSight Common Event Format (CEF) lines for alerts, and RFC 5424 syslog framing.

CEF: ``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|key=value ...``. In the header, ``\\``
and ``|`` are escaped; in extension values ``\\``, ``=`` and line breaks are (``\\n``). Custom
fields use the standard ``csN``/``cnN`` slots with their labels.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aseptic import __version__
from aseptic.clock import format_rfc3339
from aseptic.siem._alert import Alert

__all__ = ["VENDOR", "format_cef", "format_syslog"]

VENDOR = "Aseptic"
_PRODUCT = "Aseptic"
_HOSTNAME_OK = re.compile(r"^[\x21-\x7e]{1,255}$")


def _header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _extension(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def format_cef(alert: Alert, *, site: str) -> str:
    """One CEF line for ``alert`` (no trailing newline)."""
    signature = alert.technique or alert.detector
    name = alert.summary
    fields: list[tuple[str, str]] = []
    if alert.time is not None:
        fields.append(("rt", str(int(alert.time.timestamp() * 1000))))
    fields.append(("dvchost", site))
    fields.append(("cat", alert.detector))
    fields.append(("msg", alert.summary))
    fields.append(("cs1Label", "technique"))
    fields.append(("cs1", alert.technique or "none"))
    fields.append(("cs2Label", "batch"))
    fields.append(("cs2", alert.batch_id or "none"))
    fields.append(("cs3Label", "tags"))
    fields.append(("cs3", ",".join(alert.tags) or "none"))
    fields.append(("cn1Label", "ledgerLeaf"))
    fields.append(("cn1", str(alert.leaf)))
    if alert.score is not None:
        fields.append(("cfp1Label", "score"))
        fields.append(("cfp1", f"{alert.score:.6g}"))
    if alert.limit is not None:
        fields.append(("cfp2Label", "limit"))
        fields.append(("cfp2", f"{alert.limit:.6g}"))
    extension = " ".join(f"{key}={_extension(value)}" for key, value in fields)
    header = "|".join(
        _header(part)
        for part in ("CEF:0", VENDOR, _PRODUCT, __version__, signature, name, str(alert.severity))
    )
    return f"{header}|{extension}"


def format_syslog(message: str, *, hostname: str, severity: int, when: datetime | None = None) -> str:
    """An RFC 5424 syslog message (facility local0) carrying ``message``; CEF severity maps to
    syslog severity (9-10 alert, 7-8 error, 5-6 warning, else notice)."""
    syslog_severity = 1 if severity >= 9 else 3 if severity >= 7 else 4 if severity >= 5 else 5
    priority = 16 * 8 + syslog_severity  # local0
    host = hostname if _HOSTNAME_OK.match(hostname) else "-"
    stamp = format_rfc3339(when or datetime.now(UTC))
    return f"<{priority}>1 {stamp} {host} aseptic - finding - {message}"

"""Findings for the SOC: ledger findings as alerts, CEF lines over RFC 5424 syslog, STIX 2.1 bundles.

    alerts = alerts_from_entries(ledger.entries(LeafKind.FINDING))
    line = format_cef(alerts[0], site="plant-1")
    SyslogForwarder("127.0.0.1", 6514, transport="tcp").send([format_syslog(line, ...)])
    bundle = stix_bundle(alerts, site="plant-1", now=clock.now())

See docs/siem.md.
"""

from aseptic.siem._alert import Alert, alerts_from_entries, is_alert
from aseptic.siem._cef import VENDOR, format_cef, format_syslog
from aseptic.siem._forward import SyslogForwarder
from aseptic.siem._stix import stix_bundle

__all__ = [
    "VENDOR",
    "Alert",
    "SyslogForwarder",
    "alerts_from_entries",
    "format_cef",
    "format_syslog",
    "is_alert",
    "stix_bundle",
]

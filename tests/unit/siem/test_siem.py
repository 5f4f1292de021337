"""Findings for the SOC: which ledger findings are alerts, CEF escaping, STIX 2.1 bundles that parse
back, syslog forwarding to a collector on loopback, and the CLI end to end."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import stix2  # type: ignore[import-untyped]
from typer.testing import CliRunner

import aseptic.siem
from aseptic.cli.main import app
from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import BackendError, ConfigError, InputError
from aseptic.ledger import LeafKind, Ledger, canonical_json
from aseptic.siem import SyslogForwarder, alerts_from_entries, format_cef, format_syslog, stix_bundle

pytestmark = pytest.mark.requirement("ASE-SOC")

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
MSPC = {
    "batch_id": "B-7",
    "batch_time_h": 112.5,
    "contributions": [{"share": 0.8, "tag": "ph"}, {"share": 0.2, "tag": "temperature_k"}],
    "detector": "mspc.spe",
    "kind": "finding",
    "limit": 10.0,
    "score": 45.0,
    "technique": "T0856",
    "technique_name": "Spoofed Reporting Message",
    "time": "2026-03-01T12:00:00Z",
    "version": 1,
}
MANIFEST = {"type": "provenance-manifest", "kind": "model", "name": "soft-sensor", "version": "1"}
FIRMWARE = {
    "detector": "attestation",
    "technique": "T0839",
    "time": "2026-03-01T13:00:00Z",
    "device": "ph|probe",
}


def _entries(*payloads: dict[str, object]) -> list[tuple[int, bytes]]:
    return [(index, canonical_json(payload)) for index, payload in enumerate(payloads)]


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.siem.__all__) == [
        "Alert",
        "SyslogForwarder",
        "VENDOR",
        "alerts_from_entries",
        "format_cef",
        "format_syslog",
        "is_alert",
        "stix_bundle",
    ]


def test_only_findings_that_name_a_technique_are_alerts() -> None:
    alerts = alerts_from_entries(_entries(MSPC, MANIFEST, FIRMWARE))
    assert [a.leaf for a in alerts] == [0, 2]
    mspc, firmware = alerts
    assert mspc.tags == ("ph", "temperature_k")
    assert mspc.severity == 9  # 4.5 times the limit
    assert mspc.technique_name == "Spoof Reporting Message"  # the catalogue's name, not the payload's
    assert firmware.severity == 8  # integrity finding without a statistic
    assert "batch B-7" in mspc.summary


def test_a_payload_that_is_not_a_json_object_is_an_error_naming_the_leaf() -> None:
    with pytest.raises(InputError, match="leaf 3 is a list"):
        alerts_from_entries([(3, b"[1,2]")])
    with pytest.raises(InputError, match="leaf 4 is not JSON"):
        alerts_from_entries([(4, b"{nope")])


def test_cef_escapes_header_pipes_and_extension_equals_and_newlines() -> None:
    (alert,) = alerts_from_entries(_entries({**FIRMWARE, "detector": "a|b=c\nd"}))
    line = format_cef(alert, site="plant=1")
    assert line.startswith("CEF:0|Aseptic|Aseptic|")
    assert "a\\|b=c d finding" in line  # header: pipe escaped, newline flattened
    assert "dvchost=plant\\=1" in line
    assert "cat=a|b\\=c\\nd" in line  # extension: '=' and newline escaped, '|' is legal there
    assert "\n" not in line
    assert "|T0839|" in line and "Module Firmware|8|rt=" in line  # signature id, severity


def test_syslog_framing_maps_severity() -> None:
    message = format_syslog("CEF:0|x", hostname="host-1", severity=9, when=T0)
    assert message == "<129>1 2026-03-01T12:00:00.000000Z host-1 aseptic - finding - CEF:0|x"
    assert format_syslog("m", hostname="bad host", severity=2, when=T0).startswith(
        "<133>1 2026-03-01T12:00:00.000000Z - "
    )


def test_stix_bundle_parses_back_and_ids_are_stable() -> None:
    alerts = alerts_from_entries(_entries(MSPC, MANIFEST, FIRMWARE))
    bundle = stix_bundle(alerts, site="plant-1", now=T0)
    parsed = stix2.parse(json.dumps(bundle), allow_custom=True)
    kinds = sorted(obj.type for obj in parsed.objects)
    assert kinds == ["attack-pattern", "attack-pattern", "identity", "sighting", "sighting"]
    pattern = next(
        o for o in parsed.objects if o.type == "attack-pattern" and o.name == "Spoof Reporting Message"
    )
    assert pattern.external_references[0].external_id == "T0856"
    again = stix_bundle(alerts, site="plant-1", now=T0)
    assert [o["id"] for o in again["objects"]] == [o["id"] for o in bundle["objects"]]
    other_site = stix_bundle(alerts, site="plant-2", now=T0)
    assert {o["id"] for o in other_site["objects"]}.isdisjoint(
        o["id"] for o in bundle["objects"] if o["type"] == "sighting"
    )


class _Collector(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        self.received: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        data = self.rfile.read()
        assert isinstance(self.server, _Collector)
        while data:  # RFC 6587 octet counting: "LEN SP MSG"
            length, _, rest = data.partition(b" ")
            size = int(length)
            self.server.received.append(rest[:size])
            data = rest[size:]


@pytest.fixture
def collector() -> Iterator[_Collector]:
    server = _Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_forwarding_over_tcp_frames_every_message(collector: _Collector) -> None:
    port = collector.server_address[1]
    assert SyslogForwarder("127.0.0.1", port).send(["first message", "second = with | symbols"]) == 2
    for _ in range(100):
        if len(collector.received) == 2:
            break
        threading.Event().wait(0.02)
    assert collector.received == [b"first message", b"second = with | symbols"]


def test_forwarding_over_udp_arrives_and_oversize_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        forwarder = SyslogForwarder("127.0.0.1", sock.getsockname()[1], transport="udp")
        forwarder.send(["hello"])
        assert sock.recv(4096) == b"hello"
        with pytest.raises(InputError, match="longer than 2048"):
            forwarder.send(["x" * 3000])


def test_unreachable_collector_and_bad_settings_are_clear_errors() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        with pytest.raises(BackendError, match=f"syslog collector 127.0.0.1:{port}/tcp"):
            SyslogForwarder("127.0.0.1", port, timeout_s=2).send(["x"])
    with pytest.raises(ConfigError, match="outside 1..65535"):
        SyslogForwarder("127.0.0.1", 0)


def test_cli_lists_exports_and_forwards_the_ledgers_findings(tmp_path: Path, collector: _Collector) -> None:
    data_dir = tmp_path / "data"
    with Ledger.open(data_dir, site_key=SigningKey.generate(), clock=SimClock(T0)) as ledger:
        ledger.append_finding(MSPC)
        ledger.append_finding(MANIFEST)
        ledger.append_entry(LeafKind.AUDIT, {"entry": "record_change", "technique": "T0836"})  # not a finding
        ledger.append_finding(FIRMWARE)
    runner = CliRunner()
    listed = runner.invoke(app, ["findings", "list", "--data-dir", str(data_dir), "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["technique"] for row in json.loads(listed.stdout)] == ["T0856", "T0839"]
    cef = tmp_path / "findings.cef"
    result = runner.invoke(
        app, ["findings", "export", "--format", "cef", "--out", str(cef), "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 0, result.output
    assert len(cef.read_text().splitlines()) == 2
    stix_file = tmp_path / "findings.json"
    result = runner.invoke(app, ["findings", "export", "--out", str(stix_file), "--data-dir", str(data_dir)])
    assert result.exit_code == 0
    assert stix2.parse(stix_file.read_text(), allow_custom=True).type == "bundle"
    target = f"127.0.0.1:{collector.server_address[1]}"
    sent = runner.invoke(
        app, ["findings", "forward", "--syslog", target, "--since-leaf", "1", "--data-dir", str(data_dir)]
    )
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout) == {"sent": 1, "next_since_leaf": 4}
    bad = runner.invoke(
        app, ["findings", "export", "--format", "xml", "--out", str(cef), "--data-dir", str(data_dir)]
    )
    assert bad.exit_code == 2
    assert "is not cef or stix" in bad.stderr
    assert (
        runner.invoke(
            app, ["findings", "forward", "--syslog", "nohostport", "--data-dir", str(data_dir)]
        ).exit_code
        == 2
    )

"""Reading the devices' firmware digests over OPC UA and attesting them, at connect and periodically.

The twin's server (and any server laid out like it) publishes
``Objects/<site>/<area>/<unit>/Devices/<id>/FirmwareDigest``. ``OpcUaFirmwareReader`` reads every
device's digest through an open asyncua client; ``attest_once`` feeds the reports to a
``PostureRegistry`` and logs each ``AttestationFinding`` in a ``FindingLog`` (the ledger);
``attest_periodically`` repeats that until stopped, so a device whose firmware changes, or that
stops reporting, loses its posture within one interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from aseptic.clock import Clock
from aseptic.errors import BackendError
from aseptic.provenance._manifest import FindingLog
from aseptic.provenance._posture import AttestationFinding, PostureRegistry

__all__ = ["FirmwareReader", "OpcUaFirmwareReader", "attest_once", "attest_periodically"]

TWIN_NAMESPACE = "urn:aseptic:twin"
TWIN_UNIT = "site-01.fermentation.fermenter-01"


class FirmwareReader(Protocol):
    """A source of the firmware digests devices report (device id -> digest text)."""

    async def read_firmware_digests(self) -> Mapping[str, str]: ...


class OpcUaFirmwareReader:
    """Reads ``<unit>.Devices.<id>.FirmwareDigest`` for every device under the unit's Devices folder."""

    def __init__(self, client: Any, *, unit: str = TWIN_UNIT, namespace: str = TWIN_NAMESPACE) -> None:
        self._client = client
        self._unit = unit
        self._namespace = namespace

    async def read_firmware_digests(self) -> dict[str, str]:
        """Every device's reported digest (an unreadable node reads as an empty report).

        Raises:
            BackendError: the server has no such namespace or Devices folder.
        """
        from asyncua import ua as _ua

        ua: Any = _ua  # asyncua's stubs type NodeId's identifier narrowly and miss UaError
        try:
            idx = await self._client.get_namespace_index(self._namespace)
            folder = self._client.get_node(ua.NodeId(f"{self._unit}.Devices", idx))
            children = await folder.get_children()
        except (ua.UaError, ValueError, OSError) as exc:
            raise BackendError(f"cannot read the Devices folder of {self._unit}: {exc}") from None
        digests: dict[str, str] = {}
        for child in children:
            name = (await child.read_browse_name()).Name
            node = self._client.get_node(ua.NodeId(f"{self._unit}.Devices.{name}.FirmwareDigest", idx))
            try:
                value = await node.read_value()
            except (ua.UaError, OSError):
                value = ""
            digests[str(name)] = value if isinstance(value, str) else ""
        return digests


async def attest_once(
    reader: FirmwareReader, registry: PostureRegistry, clock: Clock, log: FindingLog | None = None
) -> list[AttestationFinding]:
    """Read every device's digest, record it, log and return the Findings of mismatches."""
    reports = await reader.read_firmware_digests()
    now = clock.now()
    findings = []
    for device_id, digest in sorted(reports.items()):
        finding = registry.report(device_id, digest, now)
        if finding is not None:
            findings.append(finding)
            if log is not None:
                log.append_finding(finding.to_payload())
    return findings


async def attest_periodically(
    reader: FirmwareReader,
    registry: PostureRegistry,
    clock: Clock,
    *,
    interval_s: float,
    stop: asyncio.Event,
    log: FindingLog | None = None,
) -> list[AttestationFinding]:
    """``attest_once`` now (at connect) and every ``interval_s`` until ``stop``; all Findings.

    A device keeps raising Findings while it reports the wrong image (each report is evidence).
    """
    findings: list[AttestationFinding] = []
    while True:
        findings += await attest_once(reader, registry, clock, log)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            continue
        return findings

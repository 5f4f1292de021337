"""What ``ApiService.open`` connects besides the ledger and the stores: the plant (the write gateway
over the twin's OPC UA server, with device attestation when devices are expected) and the inline
access analytics.
"""

from __future__ import annotations

from pathlib import Path

from aseptic.clock import Clock
from aseptic.config import Settings
from aseptic.gateway import TwinLink, WriteGateway
from aseptic.service import DeviceAttestation, ExpectedFirmware
from aseptic.trust import AccessWatch, AnalyticsConfig, DecisionLog, EnforcementPoint

__all__ = ["access_watch", "plant_gateway"]


def access_watch(data_dir: Path, settings: Settings, clock: Clock) -> AccessWatch | None:
    """Inline access analytics per ``[access]`` (None when switched off)."""
    access = settings.access
    if not access.inline_analytics:
        return None
    config = AnalyticsConfig(
        window_s=access.window_s,
        bulk_factor=access.bulk_factor,
        min_bulk_reads=access.min_bulk_reads,
        novel_limit=access.novel_limit,
        denial_limit=access.denial_limit,
    )
    return AccessWatch(data_dir, config, access.training_h, clock.now())


def plant_gateway(
    data_dir: Path,
    settings: Settings,
    clock: Clock,
    pep: EnforcementPoint,
    log: DecisionLog,
    expected: tuple[ExpectedFirmware, ...],
) -> tuple[WriteGateway | None, DeviceAttestation | None]:
    """The write gateway to the plant per ``[gateway]`` (None without an endpoint), and the device
    attestation when ``expected`` names devices (attested at every (re)connect)."""
    origin = settings.site.id
    gateway = None
    attestation = None
    gw = settings.gateway
    if gw.endpoint is not None:
        link = TwinLink(
            gw.endpoint,
            data_dir=data_dir,
            writer=gw.writer,
            unit_path=f"{origin}.{gw.area}.{gw.unit}",
            clock=clock,
            timeout_s=gw.timeout_s,
        )
        if expected:
            attestation = DeviceAttestation(
                expected,
                link.read_firmware_digests,
                clock,
                log.log_finding,
                interval_s=settings.attestation.interval_s,
                max_report_age_s=settings.attestation.max_report_age_s,
            )
            link.add_connect_listener(attestation.request_round)  # attest at every (re)connect
        gateway = WriteGateway(
            pep,
            log,
            link,
            clock,
            system=origin,
            source_zone=settings.api.source_zone,
            area=gw.area,
            unit=gw.unit,
            clock_sync=gw.clock_sync,
            posture=attestation,
        )
    return gateway, attestation

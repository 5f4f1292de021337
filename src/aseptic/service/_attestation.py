"""Device attestation inside ``aseptic serve``: firmware digests checked at connect and periodically.

``DeviceAttestation`` holds a ``PostureRegistry`` filled from the signed firmware manifests named in
``[attestation] devices`` (verified with the site's key when serve starts), reads every device's
reported digest through the write gateway's OPC UA session, and logs an ``AttestationFinding``
(T0857 System Firmware / T0839 Module Firmware) as a ledger entry when a device starts reporting an
image other than the signed one. The policy context of a device's own requests, and of every write
that lands on a device, reads its posture from here: a failed posture is denied by the Cedar rules
``forbid-unattested-device`` and ``forbid-critical-from-unattested-endpoint``. See
docs/adr/0300-attestation-in-serve.md.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aseptic.clock import Clock
from aseptic.config import AttestationSettings
from aseptic.crypto import PublicKey
from aseptic.errors import AsepticError, BackendError, ConfigError, IntegrityError
from aseptic.provenance import (
    ArtifactKind,
    AttestationFinding,
    DevicePosture,
    PostureRegistry,
    read_manifest,
    verify_manifest,
)
from aseptic.trust import ClientIdentity

__all__ = ["DeviceAttestation", "ExpectedFirmware", "load_expected_firmware"]

log = logging.getLogger("aseptic.service.attestation")


@dataclass(frozen=True)
class ExpectedFirmware:
    """What one device must run, from a verified firmware manifest."""

    device_id: str
    principal: str
    sha256: str
    version: str
    manifest_sha256: str
    controller: bool


def load_expected_firmware(
    settings: AttestationSettings,
    data_dir: Path,
    trusted_keys: Collection[PublicKey],
    *,
    retired: Collection[str] = (),
) -> tuple[ExpectedFirmware, ...]:
    """Verify the manifest of every ``[attestation] devices`` entry; what each device must run.

    Raises:
        InputError: a manifest is missing or not a DSSE envelope.
        SignatureError: a manifest is not signed by a trusted, unretired key.
        IntegrityError: a manifest is not for one firmware file.
        ConfigError: two devices claim the same principal.
    """
    expected = []
    principals: dict[str, str] = {}
    for device_id, device in sorted(settings.devices.items()):
        path = device.manifest if device.manifest.is_absolute() else data_dir / device.manifest
        where = f"[attestation] devices.{device_id}: {path}"
        verified = verify_manifest(read_manifest(path), trusted_keys, retired=retired, source=where)
        statement = verified.statement
        if statement.kind is not ArtifactKind.FIRMWARE or len(statement.files) != 1:
            raise IntegrityError(
                f"{where}: a device expects one firmware file, the manifest is a "
                f"{statement.kind.value} of {len(statement.files)} file(s)"
            )
        principal = device.principal or device_id.lower()
        if principal in principals:
            raise ConfigError(
                f"[attestation] devices {principals[principal]!r} and {device_id!r} are both "
                f"principal {principal!r}"
            )
        principals[principal] = device_id
        (sha256,) = statement.files.values()
        expected.append(
            ExpectedFirmware(
                device_id, principal, sha256, statement.version, verified.sha256, device.controller
            )
        )
    return tuple(expected)


class DeviceAttestation:
    """The posture of the plant's devices for one running service. Thread-safe."""

    def __init__(
        self,
        expected: Collection[ExpectedFirmware],
        read_digests: Callable[[], Mapping[str, str]],
        clock: Clock,
        log_finding: Callable[[Mapping[str, Any]], object],
        *,
        interval_s: float,
        max_report_age_s: float,
    ) -> None:
        """``read_digests``: device id -> reported digest (blocking; raises ``BackendError``);
        ``log_finding``: appends a ``finding`` ledger entry and returns once it is durable."""
        if not expected:
            raise ConfigError("device attestation needs at least one expected device (fail closed)")
        self._registry = PostureRegistry(max_report_age_s=max_report_age_s)
        self._principals: dict[str, str] = {}
        for firmware in expected:
            self._registry.expect(
                firmware.device_id,
                firmware.sha256,
                controller=firmware.controller,
                version=firmware.version,
                manifest_sha256=firmware.manifest_sha256,
            )
            self._principals[firmware.principal] = firmware.device_id
        self._read = read_digests
        self._clock = clock
        self._log_finding = log_finding
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._flagged: dict[str, str] = {}  # device -> the wrong digest already reported as a Finding
        self.rounds = 0
        self.failed_rounds = 0
        self.last_error: str | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- attesting ------------------------------------------------------------------------------

    def attest_once(self) -> list[AttestationFinding]:
        """Read every device's digest, record it, log a Finding for each new mismatch; the new Findings.

        An unreachable plant is not a Finding: the round is counted as failed and the devices'
        reports age until their posture fails (``max_report_age_s``).
        """
        try:
            reports = self._read()
        except BackendError as exc:
            with self._lock:
                self.failed_rounds += 1
                self.last_error = exc.message
            log.warning("device attestation: cannot read the firmware digests: %s", exc.message)
            return []
        findings = [f for device, digest in sorted(reports.items()) if (f := self.report(device, digest))]
        with self._lock:
            self.rounds += 1
            self.last_error = None
        return findings

    def report(self, device_id: str, digest: str) -> AttestationFinding | None:
        """Record one report; log and return a Finding if it is a new mismatch for that device.

        A device that keeps reporting the same wrong image raises one Finding (an episode), not one
        per round; a different wrong image, or a relapse after a good report, raises a new one.
        """
        now = self._clock.now()
        with self._lock:
            finding = self._registry.report(device_id, digest, now)
            if finding is None:
                self._flagged.pop(device_id, None)
                return None
            if self._flagged.get(device_id) == finding.reported_sha256:
                return None
            self._flagged[device_id] = finding.reported_sha256
        self._log_finding(finding.to_payload())
        log.warning("device attestation: %s", finding.message)
        return finding

    def request_round(self) -> None:
        """Ask ``run`` for a round now (thread-safe): the plant link calls it after a (re)connect."""
        with self._lock:
            loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Attest now, on every ``request_round`` (a reconnect) and every ``interval_s`` until ``stop``."""
        wake = asyncio.Event()
        with self._lock:
            self._loop, self._wake = asyncio.get_running_loop(), wake
        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(self.attest_once)
                except AsepticError as exc:  # the ledger failed: keep the server up, say so
                    with self._lock:
                        self.failed_rounds += 1
                        self.last_error = exc.message
                    log.error("device attestation: %s", exc.message)
                wake.clear()  # a connect during that round was read by it
                waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
                _, pending = await asyncio.wait(
                    waits, timeout=self.interval_s, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
        finally:
            with self._lock:
                self._loop = self._wake = None

    # -- what the policy context reads ----------------------------------------------------------

    def posture(self, device_id: str) -> DevicePosture:
        """The device's posture now."""
        with self._lock:
            return self._registry.posture(device_id, self._clock.now())

    def device_of(self, principal: str) -> str | None:
        """The device id whose posture principal ``principal`` carries (None: not an attested device)."""
        return self._principals.get(principal)

    def principal_attested(self, principal: str) -> bool:
        """``context.firmware_attested`` for a request by Device principal ``principal``."""
        device = self.device_of(principal)
        return device is not None and self.posture(device).attested

    def is_attested(self, endpoint: ClientIdentity | None, device: str, reported_digest: str | None) -> bool:
        """The write gateway's ``Posture``: a mutual-TLS endpoint, a target device whose posture holds,
        and the digest it reports at this very write equal to the signed one (recorded: a mismatch
        seen here is a Finding like any other)."""
        if reported_digest is not None:
            self.report(device, reported_digest)
        if endpoint is None or reported_digest is None:
            return False
        return self.posture(device).attested

    def devices(self) -> tuple[str, ...]:
        return self._registry.devices()

"""Device attestation: compare the firmware digest a device reports with the signed one expected.

Each device reports the SHA-256 of the firmware it runs, at connect and periodically (the twin's
OPC UA server publishes ``Devices/<id>/FirmwareDigest``). ``PostureRegistry`` holds, per device, the
digest of the firmware image whose signed manifest the site expects (from ``expect_manifest``) and
the device's latest report. A device's posture passes only if it has reported recently (within
``max_report_age_s``) and its latest digest equals the expected one; a device nobody expects, one
that never reported, and one that reported another digest all fail (fail closed). A mismatch yields an
``AttestationFinding`` (ATT&CK for ICS T0857 System Firmware for a controller, T0839 Module Firmware
for a field module). The enforcement point reads ``firmware_attested(device, now)`` into the policy
context, so the Cedar ``forbid-unattested-device`` rule then denies the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aseptic.clock import ensure_utc, format_rfc3339
from aseptic.errors import InputError
from aseptic.provenance._manifest import VerifiedManifest
from aseptic.provenance._spec import ArtifactKind

__all__ = ["AttestationFinding", "DevicePosture", "PostureRegistry"]

SYSTEM_FIRMWARE = ("T0857", "System Firmware")
MODULE_FIRMWARE = ("T0839", "Module Firmware")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class AttestationFinding:
    """A device reported firmware other than the signed image expected (or none was expected)."""

    time: datetime
    device_id: str
    expected_sha256: str | None
    reported_sha256: str
    technique: str
    technique_name: str

    @property
    def message(self) -> str:
        expected = self.expected_sha256 or "(no signed firmware manifest for this device)"
        return (
            f"device {self.device_id!r}: firmware SHA-256 reported {self.reported_sha256}, "
            f"expected {expected}"
        )

    def to_payload(self) -> dict[str, Any]:
        """The ledger entry (canonical keys)."""
        payload = {
            "kind": "finding",
            "type": "provenance.attestation_failed",
            "detector": "provenance.device_attestation",
            "device": self.device_id,
            "expected_sha256": self.expected_sha256,
            "reported_sha256": self.reported_sha256,
            "message": self.message,
            "technique": self.technique,
            "technique_name": self.technique_name,
            "time": format_rfc3339(self.time),
        }
        return dict(sorted(payload.items()))


@dataclass(frozen=True)
class DevicePosture:
    """What the registry knows about one device now."""

    device_id: str
    expected_sha256: str | None
    reported_sha256: str | None
    reported_at: datetime | None
    attested: bool
    reason: str


@dataclass
class _Device:
    expected: str | None = None
    version: str = ""
    manifest_sha256: str = ""
    controller: bool = True
    reported: str | None = None
    reported_at: datetime | None = None


class PostureRegistry:
    """Expected firmware per device, latest reports, and the resulting posture."""

    def __init__(self, *, max_report_age_s: float = 300.0) -> None:
        if not max_report_age_s > 0:
            raise InputError(f"max_report_age_s {max_report_age_s!r} must be positive")
        self._max_age_s = max_report_age_s
        self._devices: dict[str, _Device] = {}

    def expect(
        self, device_id: str, sha256: str, *, controller: bool, version: str = "", manifest_sha256: str = ""
    ) -> None:
        """Expect ``device_id`` to run the image with ``sha256`` (from a verified firmware manifest).

        ``controller``: a controller's firmware is system firmware (T0857), else module firmware (T0839).
        """
        digest = _digest(sha256, f"expected firmware of {device_id!r}")
        device = self._devices.setdefault(device_id, _Device())
        device.expected, device.version, device.manifest_sha256 = digest, version, manifest_sha256
        device.controller = controller

    def expect_manifest(self, device_id: str, manifest: VerifiedManifest, *, controller: bool) -> None:
        """Expect the single file of a verified firmware manifest on ``device_id``.

        Raises:
            InputError: the manifest is not for one firmware file.
        """
        statement = manifest.statement
        if statement.kind is not ArtifactKind.FIRMWARE or len(statement.files) != 1:
            raise InputError(
                f"manifest of {statement.name!r}: a device expects one firmware file, got a "
                f"{statement.kind.value} of {len(statement.files)} file(s)"
            )
        (sha256,) = statement.files.values()
        self.expect(
            device_id,
            sha256,
            controller=controller,
            version=statement.version,
            manifest_sha256=manifest.sha256,
        )

    def report(self, device_id: str, sha256: str, now: datetime) -> AttestationFinding | None:
        """Record a device's report; return a Finding if it is not the expected firmware.

        A report that is not a SHA-256 (empty, truncated, garbage) is a failing report: a Finding
        with ``reported_sha256`` ``"(not a SHA-256)"``.
        """
        device = self._devices.setdefault(device_id, _Device())
        when = ensure_utc(now)
        try:
            digest = _digest(sha256, f"firmware reported by {device_id!r}")
        except InputError:
            digest = "(not a SHA-256)"
        device.reported, device.reported_at = digest, when
        if digest == device.expected:
            return None
        technique, name = SYSTEM_FIRMWARE if device.controller else MODULE_FIRMWARE
        return AttestationFinding(when, device_id, device.expected, digest, technique, name)

    def posture(self, device_id: str, now: datetime) -> DevicePosture:
        """The device's posture at ``now`` (with the reason when it fails)."""
        device = self._devices.get(device_id)
        when = ensure_utc(now)
        if device is None or device.expected is None:
            return DevicePosture(
                device_id,
                None,
                None if device is None else device.reported,
                None if device is None else device.reported_at,
                False,
                "no signed firmware manifest is expected for this device",
            )
        base = (device_id, device.expected, device.reported, device.reported_at)
        if device.reported is None or device.reported_at is None:
            return DevicePosture(*base, False, "the device has not reported its firmware digest")
        age_s = (when - device.reported_at).total_seconds()
        if device.reported != device.expected:
            return DevicePosture(*base, False, "reported firmware differs from the signed image")
        if age_s > self._max_age_s or age_s < 0:
            return DevicePosture(*base, False, f"last firmware report is {age_s:.0f} s old")
        return DevicePosture(*base, True, "reported firmware matches the signed image")

    def firmware_attested(self, device_id: str, now: datetime) -> bool:
        """The ``firmware_attested`` policy context value for ``device_id`` at ``now``."""
        return self.posture(device_id, now).attested

    def devices(self) -> tuple[str, ...]:
        """Every device the registry expects or has heard from, sorted."""
        return tuple(sorted(self._devices))


def _digest(text: str, what: str) -> str:
    token = text.strip().lower() if isinstance(text, str) else ""
    if len(token) != 64 or not set(token) <= _HEX:
        raise InputError(f"{what}: {str(text)[:80]!r} is not a SHA-256 (64 hex digits)")
    return token

"""Device firmware: a deterministic synthetic image per (device id, version) and its digest.

Each simulated device reports the SHA-256 of the firmware image it runs. The factory image is
synthesised from the device id and version (a header plus SHAKE-256 filler), so every site and
every test computes the same digest; ``FirmwareBank.install`` swaps an image (a legitimate update
or an attacker's implant) and the reported digest changes with it.
"""

from __future__ import annotations

import hashlib

from aseptic.errors import InputError
from aseptic.twin.tags import DEVICES

__all__ = ["FirmwareBank", "factory_image"]

_IMAGE_BYTES = 64 * 1024
_MAX_IMAGE_BYTES = 64 * 1024 * 1024


def factory_image(device_id: str, version: str) -> bytes:
    """The synthetic factory firmware image of ``device_id`` at ``version``."""
    header = f"ASEPTIC-FW\x00{device_id}\x00{version}\x00".encode()
    filler = hashlib.shake_256(header).digest(_IMAGE_BYTES - len(header))
    return header + filler


class FirmwareBank:
    """The firmware images of every device of one plant."""

    def __init__(self) -> None:
        self._digests = {
            d.id: hashlib.sha256(factory_image(d.id, d.firmware_version)).hexdigest() for d in DEVICES
        }

    def digests(self) -> dict[str, str]:
        """Device id -> hex SHA-256 of the image it runs."""
        return dict(self._digests)

    def install(self, device_id: str, image: bytes) -> str:
        """Install ``image`` on ``device_id``; returns the new digest.

        Raises:
            InputError: unknown device, or an empty or oversized image.
        """
        if device_id not in self._digests:
            raise InputError(
                f"unknown device {device_id!r}", hint="known devices: " + ", ".join(sorted(self._digests))
            )
        if not isinstance(image, bytes | bytearray) or not 0 < len(image) <= _MAX_IMAGE_BYTES:
            raise InputError(f"firmware image for {device_id!r} must be 1 byte to 64 MiB of bytes")
        digest = hashlib.sha256(bytes(image)).hexdigest()
        self._digests[device_id] = digest
        return digest

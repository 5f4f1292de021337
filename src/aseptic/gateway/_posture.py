"""Posture: is the path of this write to the plant attested? (``context.firmware_attested``)

Aseptic has no endpoint agent that measures a workstation's firmware. What it can check, per
request, is (1) the endpoint: the request came over mutual TLS with a client certificate of an
enrolled, active device or service of the site CA (a managed endpoint; verified and looked up in
the identity store at authentication, so a revoked endpoint is refused on its next request), and
(2) the target: the controller the write lands on reports, over OPC UA, the SHA-256 of an approved
firmware image. Both must hold; either unknown is "not attested" (fail closed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aseptic.trust import ClientIdentity
from aseptic.twin import DEVICES, factory_image

__all__ = ["ApprovedFirmwarePosture", "Posture", "approved_factory_firmware"]


class Posture(Protocol):
    def is_attested(self, endpoint: ClientIdentity | None, device: str, reported_digest: str | None) -> bool:
        """True only if the endpoint and the target device are both attested."""
        ...


def approved_factory_firmware() -> dict[str, str]:
    """Device id -> SHA-256 of its catalogue firmware version's factory image (the approved set)."""
    return {d.id: hashlib.sha256(factory_image(d.id, d.firmware_version)).hexdigest() for d in DEVICES}


@dataclass(frozen=True)
class ApprovedFirmwarePosture:
    """Attested = a mutual-TLS endpoint of the site and a target running approved firmware."""

    approved: Mapping[str, str] = field(default_factory=approved_factory_firmware)

    def is_attested(self, endpoint: ClientIdentity | None, device: str, reported_digest: str | None) -> bool:
        if endpoint is None or reported_digest is None:
            return False
        expected = self.approved.get(device)
        return expected is not None and reported_digest.lower() == expected

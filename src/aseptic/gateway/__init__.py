"""The write gateway (issue 4, part 3b): the one path from a principal to a write to the plant.

``WriteGateway`` authenticates nothing itself: it is handed an authenticated ``Principal`` (and
the mutual-TLS endpoint, if any), reads the plant's state (``PlantPort``; ``TwinLink`` over
secured OPC UA), asks the ``EnforcementPoint`` (which logs the decision), and only on an allow
writes as the plant's one configured writer, reads back, and records the change in the audit
trail. See docs/gateway.md.
"""

from aseptic.gateway._gateway import (
    CONDUIT,
    MAX_REASON_CHARS,
    ChangeResult,
    UnknownTarget,
    WriteDenied,
    WriteGateway,
    decision_id,
)
from aseptic.gateway._opcua import TwinLink
from aseptic.gateway._plant import BatchStatus, PlantPort, PlantSnapshot, batch_state_of
from aseptic.gateway._posture import ApprovedFirmwarePosture, Posture, approved_factory_firmware

__all__ = [
    "CONDUIT",
    "MAX_REASON_CHARS",
    "ApprovedFirmwarePosture",
    "BatchStatus",
    "ChangeResult",
    "PlantPort",
    "PlantSnapshot",
    "Posture",
    "TwinLink",
    "UnknownTarget",
    "WriteDenied",
    "WriteGateway",
    "approved_factory_firmware",
    "batch_state_of",
    "decision_id",
]

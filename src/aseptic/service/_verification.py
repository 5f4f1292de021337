"""The last ledger verification's outcome, kept for operations (``D/ledger-verification.json``).

``aseptic ledger verify`` records every run here (result, tree size, time, the first discrepancy);
``/metrics`` reports it. Not evidence: the verification itself is what an auditor repeats.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aseptic.clock import format_rfc3339, parse_rfc3339

__all__ = ["VERIFICATION_FILE", "LastVerification", "read_last_verification", "record_verification"]

VERIFICATION_FILE = "ledger-verification.json"


@dataclass(frozen=True)
class LastVerification:
    ok: bool
    time: datetime
    size: int | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "time": format_rfc3339(self.time), "size": self.size, "reason": self.reason}


def record_verification(data_dir: Path, result: LastVerification) -> None:
    """Write ``result`` atomically; a failure to write is not the verification's failure (ignored)."""
    path = data_dir / VERIFICATION_FILE
    staging = path.with_suffix(".tmp")
    try:
        staging.write_text(json.dumps(result.to_json(), sort_keys=True) + "\n", encoding="utf-8")
        os.replace(staging, path)
    except OSError:
        return


def read_last_verification(data_dir: Path) -> LastVerification | None:
    """The recorded outcome, or None when none is recorded (or the file is unreadable)."""
    try:
        fields = json.loads((data_dir / VERIFICATION_FILE).read_text(encoding="utf-8"))
        size = fields.get("size")
        return LastVerification(
            bool(fields["ok"]),
            parse_rfc3339(str(fields["time"])),
            int(size) if isinstance(size, int) else None,
            None if fields.get("reason") is None else str(fields["reason"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None

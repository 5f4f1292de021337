"""Fakes shared by the trust tests."""

from __future__ import annotations

from typing import Any

from aseptic.errors import BackendError


class AuditList:
    """An audit sink that keeps entries in memory (a fake implementing the sink protocol)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.fail = False

    def __call__(self, entry: Any) -> object:
        if self.fail:
            raise BackendError("audit sink down")
        self.entries.append(dict(entry))
        return len(self.entries)

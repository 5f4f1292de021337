"""An ``AuditLog`` (``aseptic.audit``) over the API's one ledger writer, the decision log: each write
runs on its writer thread (``DecisionLog.call``), so signatures and assessments get their leaf index
without a second ``Ledger`` writer (ADR 0320)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aseptic.api._service import ApiService
from aseptic.ledger import LeafKind

__all__ = ["WriterLog"]


class WriterLog:
    """An ``AuditLog`` over the decision log's ledger: each write runs on its writer thread."""

    def __init__(self, service: ApiService) -> None:
        self._log = service.log

    def append_entry(self, kind: LeafKind, payload: Mapping[str, Any] | bytes) -> int:
        return self._log.call(lambda ledger: ledger.append_entry(kind, payload))

    def append_entries(self, kind: LeafKind, payloads: Iterable[Mapping[str, Any] | bytes]) -> range:
        items = list(payloads)
        return self._log.call(lambda ledger: ledger.append_entries(kind, items))

    def entries(self, kind: LeafKind, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]:
        return self._log.call(lambda ledger: ledger.entries(kind, start, end))

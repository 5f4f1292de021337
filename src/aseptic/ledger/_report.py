"""What ``verify_ledger`` found: a report, its discrepancies, and the error raised when there are any."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from aseptic.errors import IntegrityError

__all__ = ["Auditor", "Discrepancy", "LedgerTampered", "Report"]


@dataclass(frozen=True)
class Discrepancy:
    """One place where the stored ledger disagrees with what was logged or signed.

    ``table``/``row``/``column`` locate it (``row`` in the table's own key: ``leaf 12``,
    ``leaf 12 position 7``, ``id 3``); ``expected`` is what the log or a signature says, ``found``
    what is stored or recomputed there.
    """

    table: str
    row: str
    column: str
    problem: str
    expected: str = ""
    found: str = ""

    def __str__(self) -> str:
        text = f"{self.table} {self.row}, column {self.column}: {self.problem}"
        if self.expected or self.found:
            text += f" (expected {self.expected}, found {self.found})"
        return text


@dataclass
class Report:
    """The outcome of verifying one ledger."""

    ledger: str
    size: int = 0
    root: str = ""
    leaves: dict[str, int] = field(default_factory=dict)
    readings: int = 0
    checkpoints: int = 0
    consistency_proofs: int = 0
    envelope_signatures: int = 0
    envelopes_without_logged_key: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)
    discrepancies_omitted: int = 0

    @property
    def first(self) -> Discrepancy | None:
        return self.discrepancies[0] if self.discrepancies else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = not self.discrepancies
        return out


class LedgerTampered(IntegrityError):
    """``verify_ledger`` found discrepancies; ``report`` holds them all, the message the first."""

    def __init__(self, report: Report) -> None:
        first = report.first
        count = len(report.discrepancies) + report.discrepancies_omitted
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(
            f"{report.ledger}: {first}{more}",
            hint="the ledger was altered after it was written; `--json` lists every discrepancy",
        )
        self.report = report


class Auditor(Protocol):
    """What row checks need from a verification pass: the report and a place to record findings."""

    report: Report
    require_signatures: bool

    def add(self, discrepancy: Discrepancy) -> int | None:
        """Record ``discrepancy``; its position in ``report.discrepancies`` (None past the limit)."""
        ...

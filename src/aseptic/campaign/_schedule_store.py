"""``D/campaign-schedule.db``: every cycle of the continuous campaign, its full result and its score.

Not evidence by itself (it is kept apart from ``ledger.db``): each cycle's result is bound to the
ledger by the SHA-256 in its ``campaign_cycle`` audit entry, and ``verify_digest`` re-checks a row
against it. Tables: ``cycles`` (one row per cycle: when, which scenarios, the rotation cursor after
it, the result JSON and its digest, the resilience score and its components, the findings raised)
and ``results`` (one row per scenario per cycle, for "latest result of each scenario").
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aseptic.campaign._resilience import ResilienceScore
from aseptic.clock import format_rfc3339, parse_rfc3339
from aseptic.errors import BackendError, IntegrityError

__all__ = ["SCHEDULE_DB", "CycleRecord", "ScheduleStore", "result_digest"]

SCHEDULE_DB = "campaign-schedule.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cycles (
    cycle INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    scenarios TEXT NOT NULL,
    next_cursor INTEGER NOT NULL,
    result TEXT NOT NULL,
    result_sha256 TEXT NOT NULL,
    score TEXT NOT NULL,
    findings INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    cycle INTEGER NOT NULL REFERENCES cycles(cycle),
    scenario TEXT NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (cycle, scenario)
);
CREATE INDEX IF NOT EXISTS results_by_scenario ON results (scenario, cycle);
"""


@dataclass(frozen=True)
class CycleRecord:
    """One stored cycle (without its full result: ``ScheduleStore.result`` reads that)."""

    cycle: int
    started: datetime
    finished: datetime
    scenarios: tuple[str, ...]
    next_cursor: int
    result_sha256: str
    score: ResilienceScore
    findings: int

    def to_json(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle,
            "started": format_rfc3339(self.started),
            "finished": format_rfc3339(self.finished),
            "scenarios": list(self.scenarios),
            "result_sha256": self.result_sha256,
            "resilience": self.score.to_json(),
            "findings": self.findings,
        }


def result_digest(result: dict[str, Any]) -> str:
    """SHA-256 (hex) of a campaign result as stored: JSON with sorted keys."""
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode("utf-8")).hexdigest()


def _score(text: str) -> ResilienceScore:
    fields = json.loads(text)
    fields["techniques_executed"] = tuple(fields["techniques_executed"])
    fields["techniques_detected"] = tuple(fields["techniques_detected"])
    return ResilienceScore(**fields)


class ScheduleStore:
    """The schedule's SQLite store. Open it, use it from one thread, close it."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, data_dir: Path, *, read_only: bool = False) -> ScheduleStore:
        """Open (creating unless ``read_only``) ``data_dir/campaign-schedule.db``.

        Raises:
            BackendError: it cannot be opened, or (``read_only``) does not exist yet.
        """
        path = data_dir / SCHEDULE_DB
        try:
            if read_only:
                if not path.is_file():
                    raise BackendError(f"{path} does not exist: no campaign cycle has run yet")
                conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
            else:
                conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open the campaign schedule store {path}: {exc}") from None
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ScheduleStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise BackendError(f"campaign schedule store {self.path}: {exc}") from None

    def last_cycle(self) -> int:
        """The number of the last stored cycle (0: none yet)."""
        return int(self._query("SELECT coalesce(max(cycle), 0) FROM cycles")[0][0])

    def next_cursor(self) -> int:
        """Where the rotation goes on (0 before the first cycle)."""
        rows = self._query("SELECT next_cursor FROM cycles ORDER BY cycle DESC LIMIT 1")
        return int(rows[0][0]) if rows else 0

    def last_score(self) -> ResilienceScore | None:
        rows = self._query("SELECT score FROM cycles ORDER BY cycle DESC LIMIT 1")
        return _score(rows[0][0]) if rows else None

    def latest_results(self) -> dict[str, dict[str, Any]]:
        """Scenario id -> the campaign.json row of its latest run, with ``cycle`` and ``finished`` added."""
        rows = self._query(
            "SELECT r.scenario, r.row, r.cycle, c.finished FROM results r JOIN cycles c USING (cycle)"
            " WHERE r.cycle = (SELECT max(cycle) FROM results WHERE scenario = r.scenario)"
            " ORDER BY r.scenario"
        )
        return {str(s): {**json.loads(row), "cycle": int(c), "finished": str(f)} for s, row, c, f in rows}

    def cycles(self, limit: int = 1000) -> list[CycleRecord]:
        """The last ``limit`` cycles, oldest first."""
        rows = self._query(
            "SELECT cycle, started, finished, scenarios, next_cursor, result_sha256, score, findings"
            " FROM cycles ORDER BY cycle DESC LIMIT ?",
            (limit,),
        )
        return [
            CycleRecord(
                int(c),
                parse_rfc3339(s),
                parse_rfc3339(f),
                tuple(json.loads(ids)),
                int(n),
                d,
                _score(sc),
                int(k),
            )
            for c, s, f, ids, n, d, sc, k in reversed(rows)
        ]

    def result(self, cycle: int) -> dict[str, Any]:
        """The full campaign result of ``cycle``, checked against its stored digest.

        Raises:
            BackendError: no such cycle.
            IntegrityError: the stored result does not match its digest (the one in the ledger).
        """
        rows = self._query("SELECT result, result_sha256 FROM cycles WHERE cycle = ?", (cycle,))
        if not rows:
            raise BackendError(f"no campaign cycle {cycle} in {self.path}")
        text, expected = rows[0]
        result: dict[str, Any] = json.loads(text)
        computed = result_digest(result)
        if computed != expected:
            raise IntegrityError(
                f"campaign cycle {cycle} in {self.path}: result sha256 {computed}, stored {expected}",
                hint="compare with the campaign_cycle entry in the ledger",
            )
        return result

    def add_cycle(self, record: CycleRecord, result: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """Store a cycle and its per-scenario rows in one transaction.

        Raises:
            BackendError: the write failed (nothing is stored).
        """
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "INSERT INTO cycles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.cycle,
                        format_rfc3339(record.started),
                        format_rfc3339(record.finished),
                        json.dumps(list(record.scenarios)),
                        record.next_cursor,
                        json.dumps(result, sort_keys=True),
                        record.result_sha256,
                        json.dumps(record.score.to_json(), sort_keys=True),
                        record.findings,
                    ),
                )
                self._conn.executemany(
                    "INSERT INTO results VALUES (?, ?, ?)",
                    [(record.cycle, str(row["id"]), json.dumps(row, sort_keys=True)) for row in rows],
                )
        except sqlite3.Error as exc:
            raise BackendError(f"cannot store campaign cycle {record.cycle} in {self.path}: {exc}") from None

"""Access analytics inline: every decision and login fed to ``AccessAnalytics`` as it is logged.

``AccessWatch`` is a ``DecisionLog`` observer. When the log's writer opens the ledger it calls
``catch_up``: the entries already in the log are replayed (in log order) to rebuild each identity's
baseline and recent windows; findings are raised only for entries after the mark kept in
``D/access-analytics.json`` (what an earlier run, or ``aseptic access analyse``, has analysed). From
then on the writer hands it every committed group, so the analytics run on the writer thread after
the fsync, never on a request's path. Findings go to the sink (``DecisionLog.record_finding``:
queued, not waited for); those raised before the sink is attached wait in a buffer.

The mark is written at most once a second and at ``save_mark``, so a restart (or the CLI) goes on
where the watch stopped; after a crash a few findings may be raised again, none is missed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aseptic.clock import parse_rfc3339
from aseptic.errors import BackendError, InputError
from aseptic.ledger import LeafKind, Ledger
from aseptic.trust._analytics import AccessAnalytics, AnalyticsConfig
from aseptic.trust._request import Decision

__all__ = ["ANALYTICS_STATE_FILE", "AccessWatch", "read_analytics_mark"]

ANALYTICS_STATE_FILE = "access-analytics.json"
_TIMED = ("access_decision", "authentication")
_AUTHENTICATION = b'"entry":"authentication"'  # canonical JSON: how a login entry can be spotted cheaply
_SAVE_EVERY_S = 1.0


def read_analytics_mark(data_dir: Path) -> int:
    """The last leaf the analytics have seen (``-1``: none).

    Raises:
        InputError: the state file is unreadable.
    """
    path = data_dir / ANALYTICS_STATE_FILE
    if not path.is_file():
        return -1
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["last_leaf"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        hint = "delete it to analyse the whole log again"
        raise InputError(f"{path} is unreadable ({exc})", hint=hint) from None


class AccessWatch:
    """Access analytics over the decision log as it grows. Thread-safe."""

    def __init__(self, data_dir: Path, config: AnalyticsConfig, training_h: float, now: datetime) -> None:
        if training_h <= 0:
            raise ValueError(f"training_h {training_h} must be > 0")
        self._data_dir = data_dir
        self._config = config
        self._training = timedelta(hours=training_h)
        # Until the log says otherwise (its first decision), training starts now.
        self.analytics = AccessAnalytics(now + self._training, config)
        self._lock = threading.Lock()
        self._sink: Callable[[Mapping[str, Any]], object] | None = None
        self._buffer: list[dict[str, Any]] = []
        self.raised = 0
        self.last_leaf = -1
        self._saved_leaf = -1
        self._saved_at = 0.0

    def catch_up(self, ledger: Ledger) -> list[dict[str, Any]]:
        """Replay the log's decisions and logins; return (and buffer for the sink) the findings of
        the entries after the saved mark.

        Raises:
            InputError: the state file is unreadable.
        """
        mark = read_analytics_mark(self._data_dir)
        rows = sorted(ledger.entries(LeafKind.DECISION) + ledger.entries(LeafKind.AUDIT))
        entries = [(leaf, json.loads(payload)) for leaf, payload in rows]
        timed = [(leaf, e) for leaf, e in entries if e.get("entry") in _TIMED]
        found: list[dict[str, Any]] = []
        with self._lock:
            if timed:
                start = parse_rfc3339(str(timed[0][1]["time"]))
                self.analytics = AccessAnalytics(start + self._training, self._config)
            for leaf, entry in timed:
                raised = self.analytics.observe(entry)
                if leaf > mark:
                    found += raised
            self._saved_leaf = mark  # what the state file says; save_mark moves it
            self.last_leaf = max(mark, ledger.size - 1)
            self._emit(found)
        return found

    def attach(self, sink: Callable[[Mapping[str, Any]], object]) -> None:
        """Send findings to ``sink`` from now on (and those buffered so far)."""
        with self._lock:
            self._sink = sink
            buffered, self._buffer = self._buffer, []
            self._emit(buffered)

    def __call__(self, committed: Sequence[tuple[int, bytes | Decision]]) -> None:
        """Observe a committed group (the ``DecisionLog`` observer)."""
        with self._lock:
            for leaf, entry in committed:
                if isinstance(entry, Decision):
                    self._emit(self.analytics.observe_decision(entry))
                elif _AUTHENTICATION in entry:
                    self._emit(self.analytics.observe(json.loads(entry)))
                self.last_leaf = leaf
            if time.monotonic() - self._saved_at >= _SAVE_EVERY_S:
                self._save()

    def save_mark(self) -> None:
        """Write the last leaf seen to ``D/access-analytics.json``.

        Raises:
            BackendError: the file cannot be written.
        """
        with self._lock:
            self._save()

    def _save(self) -> None:
        self._saved_at = time.monotonic()
        if self.last_leaf == self._saved_leaf:
            return
        path = self._data_dir / ANALYTICS_STATE_FILE
        try:
            path.write_text(json.dumps({"last_leaf": self.last_leaf}) + "\n", encoding="utf-8")
        except OSError as exc:
            raise BackendError(f"cannot write {path}: {exc.strerror}") from None
        self._saved_leaf = self.last_leaf

    def _emit(self, findings: list[dict[str, Any]]) -> None:
        # Called with the lock held.
        self.raised += len(findings)
        if self._sink is None:
            self._buffer += findings
            return
        for finding in findings:
            self._sink(finding)

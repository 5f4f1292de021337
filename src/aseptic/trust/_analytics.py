"""Access analytics over the decision log: each identity's normal reads, and what departs from them.

``AccessAnalytics`` reads decision entries (``access_decision``) and authentication entries in log
order, ``learn``s a baseline per identity from those before ``training_end`` - the resources it
reads and its busiest window of reads - and from then on ``observe``s and returns findings:

- bulk reads: more allowed reads in one window than ``bulk_factor`` times the identity's busiest
  training window (and at least ``min_bulk_reads``): T0882 Theft of Operational Information, or
  T0811 Data from Information Repositories when the reads are of batch records;
- unusual reads: ``novel_limit`` or more distinct resources in one window that the identity never
  read in training (same techniques);
- exports: an allowed ``export_data`` by an identity that never exported in training (T0882);
- repeated denials: ``denial_limit`` or more denied requests or refused logins of one identity in
  one window: T0859 Valid Accounts (an account - guessed, stolen or its own - used beyond its rights).

An identity raises a given finding at most once per window. Pure: times come from the entries.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aseptic.clock import parse_rfc3339
from aseptic.trust._findings import access_finding
from aseptic.trust._request import Decision

__all__ = ["AccessAnalytics", "AnalyticsConfig"]

_READS = frozenset({"read_tag", "read_record"})


@dataclass(frozen=True)
class AnalyticsConfig:
    """Thresholds of the access analytics (docs/trust.md)."""

    window_s: float = 300.0
    bulk_factor: float = 5.0
    min_bulk_reads: int = 50
    novel_limit: int = 10
    denial_limit: int = 5

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.bulk_factor < 1 or min(self.min_bulk_reads, self.novel_limit) < 1:
            raise ValueError(f"bad analytics settings {self}")
        if self.denial_limit < 2:
            raise ValueError(f"denial_limit {self.denial_limit} must be >= 2")


@dataclass
class _Baseline:
    resources: set[str] = field(default_factory=set)
    peak_reads: int = 0
    exported: bool = False


@dataclass
class _Recent:
    reads: deque[tuple[datetime, str, str]] = field(default_factory=deque)  # (time, action, resource)
    denials: deque[datetime] = field(default_factory=deque)
    last_raised: dict[str, datetime] = field(default_factory=dict)


class AccessAnalytics:
    """Per-identity baselines learned before ``training_end``; findings after it."""

    def __init__(self, training_end: datetime, config: AnalyticsConfig | None = None) -> None:
        self.training_end = training_end
        self.config = config or AnalyticsConfig()
        self._window = timedelta(seconds=self.config.window_s)
        self._baselines: dict[str, _Baseline] = {}
        self._recent: dict[str, _Recent] = {}

    def baseline(self, principal: str) -> dict[str, Any]:
        """What was learned about ``principal`` (for explanations and tests)."""
        base = self._baselines.get(principal, _Baseline())
        return {"resources": sorted(base.resources), "peak_reads": base.peak_reads, "exported": base.exported}

    def observe_all(self, entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``observe`` each entry in order; every finding raised."""
        return [finding for entry in entries for finding in self.observe(entry)]

    def observe(self, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Take one log entry (others than decisions and logins are ignored); the findings it raises."""
        kind = entry.get("entry")
        if kind == "authentication":
            if entry.get("result") != "refused" or not entry.get("subject"):
                return []
            return self._denial(
                f'User::"{entry["subject"]}"', parse_rfc3339(str(entry["time"])), "login refused"
            )
        if kind != "access_decision":
            return []
        principal, action, resource = str(entry["principal"]), str(entry["action"]), str(entry["resource"])
        allowed = entry.get("decision") == "allow"
        return self._access(principal, action, resource, allowed, parse_rfc3339(str(entry["time"])))

    def observe_decision(self, decision: Decision) -> list[dict[str, Any]]:
        """``observe`` a decision as it is made (its ledger entry, without building it)."""
        request = decision.request
        principal, resource = str(request.principal), str(request.resource)
        return self._access(principal, request.action, resource, decision.allowed, request.context.time)

    def _access(
        self, principal: str, action: str, resource: str, allowed: bool, when: datetime
    ) -> list[dict[str, Any]]:
        if not allowed:
            return self._denial(principal, when, f"{action} {resource} denied")
        if action not in _READS and action != "export_data":
            return []
        recent = self._recent.setdefault(principal, _Recent())
        self._expire(recent, when)
        recent.reads.append((when, action, resource))
        if when < self.training_end:
            base = self._baselines.setdefault(principal, _Baseline())
            base.resources.add(resource)
            base.peak_reads = max(base.peak_reads, len(recent.reads))
            base.exported |= action == "export_data"
            return []
        return self._score_reads(principal, action, resource, when, recent)

    def _expire(self, recent: _Recent, when: datetime) -> None:
        start = when - self._window
        while recent.reads and recent.reads[0][0] <= start:
            recent.reads.popleft()
        while recent.denials and recent.denials[0] <= start:
            recent.denials.popleft()

    def _raise(self, recent: _Recent, detector: str, when: datetime) -> bool:
        last = recent.last_raised.get(detector)
        if last is not None and when - last < self._window:
            return False
        recent.last_raised[detector] = when
        return True

    def _score_reads(
        self, principal: str, action: str, resource: str, when: datetime, recent: _Recent
    ) -> list[dict[str, Any]]:
        base = self._baselines.get(principal)
        config, found = self.config, []
        technique = "T0811" if action == "read_record" else "T0882"
        if action == "export_data" and (base is None or not base.exported):
            if self._raise(recent, "trust.unusual_export", when):
                found.append(
                    access_finding(
                        detector="trust.unusual_export",
                        technique="T0882",
                        time=when,
                        principal=principal,
                        summary=f"{principal} exported {resource}; it never exported in its baseline",
                        score=1.0,
                        limit=0.0,
                        evidence={"resource": resource},
                    )
                )
        reads = [r for r in recent.reads if r[1] in _READS]
        limit = max(config.min_bulk_reads, config.bulk_factor * (base.peak_reads if base else 0))
        if len(reads) > limit and self._raise(recent, "trust.bulk_read", when):
            found.append(
                access_finding(
                    detector="trust.bulk_read",
                    technique=technique,
                    time=when,
                    principal=principal,
                    summary=f"{principal} made {len(reads)} reads in {config.window_s:g} s; its baseline"
                    f" peak is {base.peak_reads if base else 0}",
                    score=float(len(reads)),
                    limit=float(limit),
                    evidence={"window_s": config.window_s, "distinct_resources": len({r[2] for r in reads})},
                )
            )
        if base is not None:
            novel = sorted({r[2] for r in reads} - base.resources)
            if len(novel) >= config.novel_limit and self._raise(recent, "trust.unusual_read", when):
                found.append(
                    access_finding(
                        detector="trust.unusual_read",
                        technique=technique,
                        time=when,
                        principal=principal,
                        summary=f"{principal} read {len(novel)} resources in {config.window_s:g} s that it"
                        " never read in its baseline",
                        score=float(len(novel)),
                        limit=float(config.novel_limit),
                        evidence={"resources": novel[:20]},
                    )
                )
        return found

    def _denial(self, principal: str, when: datetime, what: str) -> list[dict[str, Any]]:
        recent = self._recent.setdefault(principal, _Recent())
        self._expire(recent, when)
        recent.denials.append(when)
        limit = self.config.denial_limit
        if len(recent.denials) < limit or not self._raise(recent, "trust.repeated_denials", when):
            return []
        return [
            access_finding(
                detector="trust.repeated_denials",
                technique="T0859",
                time=when,
                principal=principal,
                summary=f"{principal}: {len(recent.denials)} denials or refused logins in"
                f" {self.config.window_s:g} s (last: {what})",
                score=float(len(recent.denials)),
                limit=float(limit),
                evidence={"window_s": self.config.window_s, "last": what},
            )
        ]

"""``GET /metrics``: operations metrics in the Prometheus text format (``prometheus_client``).

Authenticated like every other route (a bearer token, or a service's mutual-TLS client
certificate - how Prometheus scrapes) and decided as ``read_record`` on ``Record::"metrics"``; the
shipped policies let a service with the ``monitoring`` role, the security analyst and the auditor
read it (docs/operations.md). Values are read from the data directory at scrape time; the decision
and finding counts are kept incrementally (only leaves appended since the last scrape are parsed).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from aseptic.api._ops_routes import METRICS_RECORD, Authenticated, authorize_site_record
from aseptic.api._service import ApiService
from aseptic.campaign import ScheduleStore
from aseptic.clock import Clock
from aseptic.errors import AsepticError
from aseptic.ledger import LeafKind, LogReader, read_status
from aseptic.service import read_last_verification

__all__ = ["OpsCollector", "install_metrics_route"]

_FINDING_RECORD_PREFIX = "finding:"


class OpsCollector(Collector):
    """The site's operations metrics, computed when Prometheus scrapes."""

    def __init__(self, data_dir: Path, clock: Clock) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self._lock = threading.Lock()
        self._next = {
            kind: 0 for kind in (LeafKind.QUARANTINE, LeafKind.DECISION, LeafKind.FINDING, LeafKind.AUDIT)
        }
        self._quarantined: Counter[str] = Counter()
        self._decisions: Counter[str] = Counter({"allow": 0, "deny": 0})
        self._finding_technique: dict[int, str] = {}
        self._closed: set[int] = set()

    def _catch_up(self, reader: LogReader) -> None:
        for kind in self._next:
            for leaf, raw in reader.iter_payloads(kind, self._next[kind]):
                self._count(kind, leaf, raw)
                self._next[kind] = leaf + 1

    def _count(self, kind: LeafKind, leaf: int, raw: bytes) -> None:
        try:
            entry = json.loads(raw)
        except ValueError:
            return
        if not isinstance(entry, dict):
            return
        if kind is LeafKind.QUARANTINE:
            self._quarantined[str(entry.get("reason", "unknown"))] += 1
        elif kind is LeafKind.DECISION and entry.get("entry") == "access_decision":
            self._decisions[str(entry.get("decision"))] += 1
        elif kind is LeafKind.FINDING and ("technique" in entry or entry.get("kind") == "finding"):
            self._finding_technique[leaf] = str(entry.get("technique") or "none")
        elif kind is LeafKind.AUDIT and str(entry.get("record", "")).startswith(_FINDING_RECORD_PREFIX):
            new = entry.get("new")
            if isinstance(new, dict) and new.get("status") == "closed":
                try:
                    self._closed.add(int(str(entry["record"])[len(_FINDING_RECORD_PREFIX) :]))
                except ValueError:
                    return

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        status = read_status(self.data_dir)
        with self._lock, LogReader.open(self.data_dir) as reader:
            self._catch_up(reader)
            quarantined = dict(self._quarantined)
            decisions = dict(self._decisions)
            open_by: Counter[str] = Counter(
                t for leaf, t in self._finding_technique.items() if leaf not in self._closed
            )
        yield CounterMetricFamily(
            "aseptic_readings_ingested", "Readings verified and logged in the ledger.", value=status.readings
        )
        q = CounterMetricFamily(
            "aseptic_envelopes_quarantined", "Inputs rejected into quarantine, by reason.", labels=["reason"]
        )
        for reason, count in sorted(quarantined.items()):
            q.add_metric([reason], count)
        yield q
        f = GaugeMetricFamily(
            "aseptic_findings_open",
            "Findings without a closing assessment, by ATT&CK/ATLAS technique ('none': no technique).",
            labels=["technique"],
        )
        for technique, count in sorted(open_by.items()):
            f.add_metric([technique], count)
        yield f
        d = CounterMetricFamily(
            "aseptic_access_decisions", "Access decisions logged, by outcome.", labels=["decision"]
        )
        for outcome, count in sorted(decisions.items()):
            d.add_metric([outcome], count)
        yield d
        yield GaugeMetricFamily(
            "aseptic_ledger_leaves", "Leaves in the site's Merkle log.", value=status.size
        )
        latest = status.latest_checkpoint
        age = GaugeMetricFamily(
            "aseptic_ledger_checkpoint_age_seconds",
            "Seconds since the latest signed checkpoint (absent: none).",
        )
        if latest is not None:
            age.add_metric([], max(0.0, (self.clock.now() - latest.time).total_seconds()))
        yield age
        verification = read_last_verification(self.data_dir)
        ok = GaugeMetricFamily(
            "aseptic_ledger_last_verification_ok",
            "1 if the last `aseptic ledger verify` passed, 0 if it found tampering (absent: never run).",
        )
        when = GaugeMetricFamily(
            "aseptic_ledger_last_verification_timestamp_seconds", "Unix time of the last ledger verification."
        )
        if verification is not None:
            ok.add_metric([], 1.0 if verification.ok else 0.0)
            when.add_metric([], verification.time.timestamp())
        yield ok
        yield when
        score = GaugeMetricFamily(
            "aseptic_campaign_resilience_score",
            "Resilience score (0-100) of the latest continuous-campaign cycle (absent: none yet).",
        )
        cycles = GaugeMetricFamily("aseptic_campaign_cycles", "Continuous-campaign cycles stored.")
        try:
            with ScheduleStore.open(self.data_dir, read_only=True) as store:
                last = store.cycles(1)
                count = store.last_cycle()
        except AsepticError:
            last, count = [], 0
        if last:
            score.add_metric([], last[-1].score.score)
        cycles.add_metric([], count)
        yield score
        yield cycles


def install_metrics_route(app: FastAPI, data_dir: Path, clock: Clock) -> None:
    """Add ``GET /metrics`` to ``app`` with its own registry (nothing process-global)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCollector(data_dir, clock))

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    )
    def metrics(principal: Authenticated, request: Request) -> Response:
        """Operations metrics in the Prometheus text format (``read_record`` on ``Record::"metrics"``)."""
        service: ApiService = request.app.state.service
        authorize_site_record(service, principal, METRICS_RECORD)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

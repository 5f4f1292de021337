"""Platform primitives executed against the real components, beside a twin batch, at small scale.

Each watch follows one batch (attacked or its matched clean companion) sample by sample and runs
the platform's own detection on what it sees; the attack steps it was given happen at their batch
time. Findings are ``(batch_time_h, statistic)`` pairs named ``<family>.<what>`` so the runner
scores them like the process detectors' (docs/campaign.md, "Platform primitives"):

- ``FirmwareWatch``: the devices of the batch report their firmware digest at every sample
  (``aseptic.provenance.PostureRegistry``, expected = the factory image); a swapped image is an
  ``attestation.<device>`` Finding (T0839 / T0857).
- ``AccessWatch``: an identity's routine reads go through the real enforcement point (Cedar PDP,
  decision log in a scratch ledger); bulk reads and exports are requested the same way, and the
  decision entries read back from the ledger feed ``aseptic.trust.AccessAnalytics`` (T0882/T0811).
- ``GatewayWatch``: a setpoint written with a stolen identity goes through the write gateway's
  policy decision; a refusal is a ``gateway.write_denied`` Finding and the write never happens.
- ``AlarmAudit``: an attacker suppresses the alarms of one tag on the operators' alarm list
  (T0878); every check compares that list with the Findings in the ledger, and a Finding that
  never reached the list is an ``alarm_audit.suppressed`` Finding.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from aseptic.campaign._custody import CHECK_INTERVAL_H
from aseptic.campaign._decisions import RepeatingDecisionPoint
from aseptic.campaign._scenario import Step
from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import InputError
from aseptic.ledger import LeafKind, Ledger
from aseptic.provenance import PostureRegistry
from aseptic.trust import (
    AccessAnalytics,
    AccessRequest,
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    PolicyBundle,
    PolicyDecisionPoint,
    RequestContext,
    batch_entity,
    plant_entities,
    principal_entity,
)
from aseptic.twin import DEVICES, TAGS, TAGS_BY_NAME, PlantFleet, TagKind

__all__ = [
    "ANALYTICS_TRAINING_H",
    "DEVICE_ALIASES",
    "AccessWatch",
    "AlarmAudit",
    "FirmwareWatch",
    "GatewayWatch",
    "resolve_device",
]

START = datetime(2026, 1, 1, tzinfo=UTC)
ANALYTICS_TRAINING_H = 24.0
# Scenario device names -> the twin's device ids (docs/twin.md, DEVICES).
DEVICE_ALIASES: Mapping[str, str] = {
    "ph-probe": "AT-202",
    "do-probe": "AT-202",
    "offgas-analyser": "AT-201",
    "raman": "AT-203",
    "temperature-controller": "TIC-101",
    "ph-controller": "AIC-102",
    "paa-controller": "AIC-103",
    "feed-skid": "FIC-104",
    "agitator": "SIC-105",
    "batch-controller": "BATCH-01",
}
_CONTROLLERS = frozenset(d.id for d in DEVICES if "controller" in d.kind)
Finding = tuple[float, str]


def resolve_device(name: str) -> str:
    """The twin device id for a scenario's ``device`` (an alias or an id).

    Raises:
        InputError: neither an alias nor a device id.
    """
    ids = {d.id for d in DEVICES}
    device = DEVICE_ALIASES.get(name, name)
    if device not in ids:
        raise InputError(
            f"firmware_swap: unknown device {name!r}",
            hint="devices: " + ", ".join(sorted(ids | set(DEVICE_ALIASES))),
        )
    return device


def _when(time_h: float) -> datetime:
    return START + timedelta(hours=time_h)


def _due(steps: Sequence[Step], time_h: float, done: set[int]) -> list[Step]:
    out = []
    for i, step in enumerate(steps):
        if i not in done and time_h >= step.at_h - 1e-9:
            done.add(i)
            out.append(step)
    return out


class FirmwareWatch:
    """Attestation of batch ``batch``'s devices at every sample; ``firmware_swap`` steps executed."""

    def __init__(self, fleet: PlantFleet, batch: int, steps: Sequence[Step]) -> None:
        self._fleet, self._batch, self._steps, self._done = fleet, batch, steps, set[int]()
        self.registry = PostureRegistry(max_report_age_s=3600.0)
        for device, digest in fleet.firmware(batch).items():
            self.registry.expect(device, digest, controller=device in _CONTROLLERS)
        self.findings: list[Finding] = []
        self.impact: dict[str, Any] = {}

    def before_step(self, next_h: float) -> None:
        for step in _due(self._steps, next_h, self._done):
            device = resolve_device(str(step.params["device"]))
            image = b"attacker firmware for " + device.encode() + b": dosing limits removed"
            self._fleet.set_firmware(self._batch, device, image)
            self.impact["swapped_device"] = device

    def observe(self, time_h: float, sample: Mapping[str, float]) -> None:
        for device, digest in sorted(self._fleet.firmware(self._batch).items()):
            finding = self.registry.report(device, digest, _when(time_h))
            if finding is not None:
                self.findings.append((time_h, f"attestation.{device}"))

    def close(self) -> None:
        return None


class AlarmAudit:
    """The operators' alarm list, an attacker who filters it, and the audit that notices."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self._windows = [
            (s.at_h, s.at_h + (s.duration_h if s.duration_h is not None else math.inf), str(s.params["tag"]))
            for s in steps
        ]
        self.findings: list[Finding] = []
        self.impact: dict[str, Any] = {"suppressed_alarms": 0}

    def audit(self, process_findings: Sequence[tuple[float, str, str]], end_h: float) -> None:
        """Route the batch's Findings (time, statistic, first tag) to the list; audit every check."""
        shown: set[int] = set()
        suppressed: list[int] = []
        for i, (t, _statistic, tag) in enumerate(process_findings):
            if any(start <= t < stop and tag == target for start, stop, target in self._windows):
                suppressed.append(i)
            else:
                shown.add(i)
        self.impact["suppressed_alarms"] = len(suppressed)
        for i in suppressed:
            t = process_findings[i][0]
            check = math.ceil(t / CHECK_INTERVAL_H - 1e-9) * CHECK_INTERVAL_H
            if check <= end_h:
                self.findings.append((round(check, 6), "alarm_audit.suppressed"))
        self.findings.sort()


class AccessWatch:
    """An identity's reads of the historian through the enforcement point; bulk reads and exports."""

    READS_PER_SAMPLE = 1
    USUAL_TAGS = ("temperature_k", "ph", "dissolved_o2_mg_per_l", "volume_l", "paa_feed_l_per_h", "weight_kg")

    def __init__(
        self, steps: Sequence[Step], identity: str, batch_id: str, training_h: float, *, reuse: bool = True
    ) -> None:
        self._steps, self._done = steps, set[int]()
        self._training_h = training_h
        self._dir = Path(tempfile.mkdtemp(prefix="aseptic-campaign-access-"))
        self._clock = SimClock(START)
        key = SigningKey.generate()
        self._log = DecisionLog(
            lambda: Ledger.open(self._dir, site_key=key, clock=self._clock), max_batch=512, max_delay_s=0.0
        )
        self._site_key = key
        self.pdp = RepeatingDecisionPoint(PolicyBundle.default(), plant_entities(), reuse=reuse)
        self._pep = EnforcementPoint(self.pdp, self._log)
        self._name = f"{identity}-1"
        self._extra = [principal_entity("User", self._name, [identity], active=True, areas=["fermentation"])]
        self._batch_id = batch_id
        self._reads = 0
        self.findings: list[Finding] = []
        self.impact: dict[str, Any] = {"records_exposed": 0}

    def _request(self, action: str, resource: EntityRef, time_h: float) -> bool:
        self._clock.set(_when(time_h))
        context = RequestContext(
            batch_state="running",
            firmware_attested=True,
            source_zone="operations",
            conduit="api",
            time=_when(time_h),
        )
        extra = self._extra
        if resource.type == "Batch":
            extra = [*extra, batch_entity(resource.id, "fermenter-01", "fermentation")]
        decision = self._pep.authorize(
            AccessRequest(EntityRef("User", self._name), action, resource, context), extra
        )
        return bool(decision.allowed)

    def before_step(self, next_h: float) -> None:
        return None

    def observe(self, time_h: float, sample: Mapping[str, float]) -> None:
        for _ in range(self.READS_PER_SAMPLE):
            tag = self.USUAL_TAGS[self._reads % len(self.USUAL_TAGS)]
            self._reads += 1
            self._request("read_tag", EntityRef("Tag", tag), time_h)
        for step in _due(self._steps, time_h, self._done):
            if step.primitive == "historian_bulk_read":
                online = [t.name for t in TAGS if t.kind in (TagKind.SENSOR, TagKind.ACTUATOR)]
                count = min(int(step.params.get("tags", len(online))), len(online))
                # The whole history of each tag, paged: three pages per tag within a minute or two.
                for i in range(3 * count):
                    if self._request("read_tag", EntityRef("Tag", online[i % count]), time_h + i / 3600.0):
                        self.impact["records_exposed"] += 1
            else:
                if self._request("export_data", EntityRef("Batch", self._batch_id), time_h):
                    self.impact["records_exposed"] += 1

    def close(self) -> None:
        self._log.flush()
        self._log.close()
        with Ledger.open(self._dir, site_key=self._site_key, clock=self._clock, create=False) as ledger:
            entries = [json.loads(raw) for _, raw in ledger.entries(LeafKind.DECISION)]
        analytics = AccessAnalytics(_when(self._training_h))
        for finding in analytics.observe_all(entries):
            when = datetime.fromisoformat(str(finding["time"]).replace("Z", "+00:00"))
            hours = (when - START).total_seconds() / 3600.0
            self.findings.append((round(hours, 6), f"access_analytics.{finding['detector']}"))
        shutil.rmtree(self._dir, ignore_errors=True)


@cache
def _pdp() -> PolicyDecisionPoint:
    return PolicyDecisionPoint(PolicyBundle.default(), plant_entities())


class GatewayWatch:
    """``setpoint_tamper`` steps go through the write gateway's policy decision (the Cedar decision
    point with the gateway's context: batch running, control zone, the write-gateway conduit, and
    whether the value is inside the tag's validated range). A refused write is a
    ``gateway.write_denied`` Finding and never reaches the controller; an allowed one is written."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = [s for s in steps if s.primitive == "setpoint_tamper"]
        self.allowed: dict[str, bool] = {}  # setpoint tag -> the decision, once its step is due
        self.findings: list[Finding] = []
        self.impact: dict[str, Any] = {}

    def decide(self, time_h: float) -> None:
        for step in self._steps:
            tag = str(step.params["tag"])
            if tag in self.allowed or time_h < step.at_h - 1e-9:
                continue
            identity = str(step.params.get("identity", "operator"))
            name = f"{identity}-stolen"
            low_high = TAGS_BY_NAME[tag].validated
            value = float(step.params["value"])
            context = RequestContext(
                batch_state="running",
                firmware_attested=True,
                source_zone="control",
                conduit="write-gateway",
                time=_when(time_h),
                within_validated_range=low_high is None or low_high[0] <= value <= low_high[1],
            )
            extra = [principal_entity("User", name, [identity], active=True, areas=["fermentation"])]
            decision = _pdp().decide(
                AccessRequest(EntityRef("User", name), "write_setpoint", EntityRef("Tag", tag), context),
                extra,
            )
            self.allowed[tag] = bool(decision.allowed)
            self.impact["write_allowed"] = bool(decision.allowed)
            if not decision.allowed:
                self.findings.append((time_h, "gateway.write_denied"))

    def before_step(self, next_h: float) -> None:
        self.decide(next_h)

    def observe(self, time_h: float, sample: Mapping[str, float]) -> None:
        return None

    def close(self) -> None:
        return None

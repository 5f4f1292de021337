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
- ``CustodyWatch``: the batch's readings are sealed by a collector key into envelopes and appended
  to a scratch ledger every hour, checkpointed (the auditor keeps each note) and backed up
  (``aseptic.backup``) every 24 h; every ``CHECK_INTERVAL_H`` the data directory is scanned against
  the last backup's manifest and the ledger verified (``aseptic.ledger.verify_ledger``). Ledger
  tampering is a ``ledger_verify.*`` Finding; ransomware (every file encrypted in place) is a
  ``ransomware.encrypted_files`` Finding, answered by restoring the last verified backup and
  checking the restored records against the log and the batch's published values.
- ``AlarmAudit``: an attacker suppresses the alarms of one tag on the operators' alarm list
  (T0878); every check compares that list with the Findings in the ledger, and a Finding that
  never reached the list is an ``alarm_audit.suppressed`` Finding.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aseptic.backup import create_backup, restore_backup
from aseptic.campaign._scenario import Step
from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import AsepticError, InputError
from aseptic.ledger import Checkpoint, LeafKind, Ledger, verify_ledger
from aseptic.provenance import PostureRegistry
from aseptic.telemetry import Envelope, Quality, Reading
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
from aseptic.twin import DEVICES, TAGS, PlantFleet, TagKind

__all__ = [
    "ANALYTICS_TRAINING_H",
    "CHECK_INTERVAL_H",
    "DEVICE_ALIASES",
    "AccessWatch",
    "AlarmAudit",
    "CustodyWatch",
    "FirmwareWatch",
    "resolve_device",
]

START = datetime(2026, 1, 1, tzinfo=__import__("datetime").UTC)
CHECK_INTERVAL_H = 0.4  # integrity checks (data directory scan, ledger verify) every two samples
VERIFY_H = 24.0  # outside the watched window a full ledger verify runs daily (with the backup)
ENVELOPE_H = 6.0  # the collector seals an envelope of the last hours' readings
READING_EVERY = 5  # samples: the custody tags are logged hourly (small scale)
BACKUP_H = 24.0
ANALYTICS_TRAINING_H = 24.0
CUSTODY_TAGS = ("temperature_k", "ph", "dissolved_o2_mg_per_l", "paa_feed_l_per_h", "volume_l")
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

    READS_PER_SAMPLE = 2
    USUAL_TAGS = ("temperature_k", "ph", "dissolved_o2_mg_per_l", "volume_l", "paa_feed_l_per_h", "weight_kg")

    def __init__(self, steps: Sequence[Step], identity: str, batch_id: str, training_h: float) -> None:
        self._steps, self._done = steps, set[int]()
        self._training_h = training_h
        self._dir = Path(tempfile.mkdtemp(prefix="aseptic-campaign-access-"))
        self._clock = SimClock(START)
        key = SigningKey.generate()
        self._log = DecisionLog(
            lambda: Ledger.open(self._dir, site_key=key, clock=self._clock), max_batch=512, max_delay_s=0.0
        )
        self._site_key = key
        self._pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), self._log)
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


def _entropy_bits_per_byte(data: bytes) -> float:
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data[:65536], dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


class CustodyWatch:
    """The batch's readings in a scratch ledger, checked, backed up; ransomware and ledger edits."""

    def __init__(self, steps: Sequence[Step], source: str, seed: int, watched: tuple[float, float]) -> None:
        self._steps, self._done = steps, set[int]()
        self._watched = watched
        self._samples = 0
        self._root = Path(tempfile.mkdtemp(prefix="aseptic-campaign-custody-"))
        self.data_dir = self._root / "data"
        self._backups = self._root / "backups"
        self._clock = SimClock(START)
        self._site = SigningKey.generate()
        self._collector = SigningKey.generate()
        self._source = source
        self._rng = np.random.default_rng(seed)
        self._ledger: Ledger | None = Ledger.open(self.data_dir, site_key=self._site, clock=self._clock)
        self._ledger.append_key(source, self._collector.public)
        self._previous = bytes(32)
        self._sequence = 0
        self._pending: list[Reading] = []
        self._kept: list[Checkpoint] = []
        self._sealed: list[tuple[int, tuple[Reading, ...]]] = []  # (sequence, readings) logged
        self._backed_up = 0  # envelopes in the last backup
        self._last_backup: Path | None = None
        self._next_envelope_h = ENVELOPE_H
        self._next_backup_h = BACKUP_H
        self._next_check_h = CHECK_INTERVAL_H
        self._next_verify_h = VERIFY_H
        self._halted = False
        self._expected_files: set[str] = set()
        self.findings: list[Finding] = []
        self.impact: dict[str, Any] = {}

    # -- the pipeline --------------------------------------------------------------------------

    def _seal(self, time_h: float) -> None:
        if not self._pending or self._ledger is None:
            return
        self._sequence += 1
        readings = tuple(self._pending)
        envelope = Envelope.seal(
            source=self._source,
            sequence=self._sequence,
            previous_digest=self._previous,
            readings=readings,
            key=self._collector,
        )
        self._previous = envelope.digest
        self._ledger.append_envelope(envelope, envelope.to_bytes())
        self._sealed.append((self._sequence, readings))
        self._pending = []

    def _backup(self) -> None:
        if self._ledger is None:
            return
        self._kept.append(self._ledger.checkpoint())
        self._ledger.close()
        made = create_backup(
            self.data_dir, self._backups, site_key=self._site, origin="campaign", clock=self._clock
        )
        self._last_backup = made.path
        self._backed_up = len(self._sealed)
        self._expected_files = {
            p.relative_to(self.data_dir).as_posix() for p in self.data_dir.rglob("*") if p.is_file()
        }
        self._ledger = Ledger.open(self.data_dir, site_key=self._site, clock=self._clock, create=False)

    def before_step(self, next_h: float) -> None:
        return None

    def observe(self, time_h: float, sample: Mapping[str, float]) -> None:
        self._clock.set(_when(time_h))
        self._samples += 1
        if not self._halted and self._samples % READING_EVERY == 0:
            for tag in CUSTODY_TAGS:
                value = sample.get(tag, math.nan)
                self._pending.append(Reading(tag, _when(time_h), float(value), Quality.GOOD, self._source))
            if time_h >= self._next_envelope_h - 1e-9:
                self._seal(time_h)
                self._next_envelope_h += ENVELOPE_H
            if time_h >= self._next_backup_h - 1e-9:
                self._backup()
                self._next_backup_h += BACKUP_H
        for step in _due(self._steps, time_h, self._done):
            self._attack(step)
        if time_h >= self._next_check_h - 1e-9:
            start, end = self._watched
            daily = time_h >= self._next_verify_h - 1e-9
            self._check(time_h, verify=start <= time_h <= end or daily)
            if daily:
                self._next_verify_h += VERIFY_H
            self._next_check_h += CHECK_INTERVAL_H

    # -- the attacks ---------------------------------------------------------------------------

    def _attack(self, step: Step) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        self._halted = True  # the collector's pipeline stops at the first sign of tampering
        if step.primitive == "ransomware_encrypt":
            self._encrypt(str(step.params.get("target", "data_dir")))
        else:
            self._tamper(str(step.params["mutation"]))

    def _encrypt(self, target: str) -> None:
        key = AESGCM(AESGCM.generate_key(bit_length=256))
        files = [p for p in self.data_dir.rglob("*") if p.is_file()]
        if target == "ledger":
            files = [p for p in files if p.name.startswith("ledger.db")]
        for path in files:
            nonce = os.urandom(12)
            path.with_name(path.name + ".locked").write_bytes(
                nonce + key.encrypt(nonce, path.read_bytes(), None)
            )
            path.unlink()
        self.impact["files_encrypted"] = len(files)

    def _tamper(self, mutation: str) -> None:
        conn = sqlite3.connect(self.data_dir / "ledger.db")
        try:
            rows = conn.execute(
                "SELECT leaf, position, value FROM readings ORDER BY leaf, position"
            ).fetchall()
            if not rows:
                return
            leaf, position, value = rows[int(self._rng.integers(len(rows)))]
            if mutation == "flip":
                conn.execute(
                    "UPDATE readings SET value = ? WHERE leaf = ? AND position = ?",
                    (value + 0.05, leaf, position),
                )
            elif mutation == "delete":
                conn.execute("DELETE FROM readings WHERE leaf = ? AND position = ?", (leaf, position))
            elif mutation == "swap":
                other = rows[(rows.index((leaf, position, value)) + 1) % len(rows)]
                conn.execute(
                    "UPDATE readings SET value = ? WHERE leaf = ? AND position = ?",
                    (other[2], leaf, position),
                )
                conn.execute(
                    "UPDATE readings SET value = ? WHERE leaf = ? AND position = ?",
                    (value, other[0], other[1]),
                )
            else:  # truncate: the last envelope and everything logged after it, checkpoints above it
                (last,) = conn.execute("SELECT max(leaf) FROM envelopes").fetchone()
                for table in ("readings", "envelopes"):
                    conn.execute(f"DELETE FROM {table} WHERE leaf >= ?", (last,))  # noqa: S608 - fixed names
                conn.execute("DELETE FROM leaves WHERE idx >= ?", (last,))
                conn.execute("DELETE FROM checkpoints WHERE size > ?", (last,))
            conn.commit()
        finally:
            conn.close()
        self.impact["ledger_rows_edited"] = self.impact.get("ledger_rows_edited", 0) + 1

    # -- detection and response ----------------------------------------------------------------

    def _check(self, time_h: float, *, verify: bool) -> None:
        present = {
            p.relative_to(self.data_dir).as_posix(): p for p in self.data_dir.rglob("*") if p.is_file()
        }
        missing = sorted(self._expected_files - set(present))
        opaque = [
            name
            for name, path in present.items()
            if name not in self._expected_files and _entropy_bits_per_byte(path.read_bytes()) > 7.5
        ]
        if missing and opaque:
            self.findings.append((time_h, "ransomware.encrypted_files"))
            self.impact.setdefault("missing_files", len(missing))
        if verify:
            if self._ledger is not None:
                self._ledger.close()
            try:
                verify_ledger(self.data_dir, self._site.public, trusted=self._kept)
            except AsepticError as exc:
                self.findings.append((time_h, f"ledger_verify.{type(exc).__name__}"))
            finally:
                self._ledger = (
                    Ledger.open(self.data_dir, site_key=self._site, clock=self._clock, create=False)
                    if not self._halted
                    else None
                )
        if missing and opaque and "records_restored" not in self.impact:
            self._restore()

    def _restore(self) -> None:
        """Restore the last verified backup and check its records against the log and the batch."""
        if self._last_backup is None:
            self.impact.update(records_restored=0, records_verified=0, records_lost=len(self._sealed))
            return
        shutil.rmtree(self.data_dir)
        restore_backup(self._last_backup, self.data_dir, clock=self._clock, trusted=self._site.public)
        verify_ledger(self.data_dir, self._site.public, trusted=self._kept)
        expected = {
            (r.tag, r.time, r.value) for _, readings in self._sealed[: self._backed_up] for r in readings
        }
        restored: set[tuple[str, datetime, float]] = set()
        with Ledger.open(self.data_dir, site_key=self._site, clock=self._clock, create=False) as ledger:
            for tag in CUSTODY_TAGS:
                for stored in ledger.query_readings(tag, START, self._clock.now() + timedelta(hours=1)):
                    restored.add((stored.reading.tag, stored.reading.time, stored.reading.value))
        self.impact.update(
            records_restored=len(restored),
            records_verified=len(restored & expected),
            records_expected=len(expected),
            records_lost=sum(len(r) for _, r in self._sealed[self._backed_up :]),
        )

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        shutil.rmtree(self._root, ignore_errors=True)

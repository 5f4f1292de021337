"""The chain of custody under attack: a batch's readings in a scratch ledger, checked, backed up.

``CustodyWatch``: the batch's readings are sealed by a collector key into envelopes and appended to
a scratch ledger, checkpointed (the auditor keeps each note) and backed up (``aseptic.backup``)
every 24 h; every ``CHECK_INTERVAL_H`` the data directory is scanned against the last backup's
manifest and, inside the watched window (daily outside it), the ledger verified
(``aseptic.ledger.verify_ledger``). Ledger tampering is a ``ledger_verify.*`` Finding; ransomware
(every file encrypted in place) is a ``ransomware.encrypted_files`` Finding, answered by restoring
the last verified backup and checking the restored records against the log and the batch's
published values.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aseptic.backup import create_backup, restore_backup
from aseptic.campaign._scenario import Step
from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import AsepticError, BackendError
from aseptic.ledger import Checkpoint, Ledger, verify_ledger
from aseptic.telemetry import Envelope, Quality, Reading

__all__ = ["CHECK_INTERVAL_H", "CUSTODY_TAGS", "CustodyWatch"]

START = datetime(2026, 1, 1, tzinfo=UTC)
CHECK_INTERVAL_H = 0.4  # integrity checks (data directory scan, ledger verify) every two samples
VERIFY_H = 24.0  # outside the watched window a full ledger verify runs daily (with the backup)
ENVELOPE_H = 6.0  # the collector seals an envelope of the last hours' readings
READING_EVERY = 5  # samples: the custody tags are logged hourly (small scale)
BACKUP_H = 24.0
CUSTODY_TAGS = ("temperature_k", "ph", "dissolved_o2_mg_per_l", "paa_feed_l_per_h", "volume_l")
Finding = tuple[float, str]


def _when(time_h: float) -> datetime:
    return START + timedelta(hours=time_h)


def _due(steps: Sequence[Step], time_h: float, done: set[int]) -> list[Step]:
    out = []
    for i, step in enumerate(steps):
        if i not in done and time_h >= step.at_h - 1e-9:
            done.add(i)
            out.append(step)
    return out


def _entropy_bits_per_byte(data: bytes) -> float:
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data[:65536], dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _files(root: Path) -> dict[str, str]:
    """Every file under ``root``: relative POSIX name -> path. What ``root.rglob("*")`` filtered by
    ``is_file()`` lists (symbolic links to directories not entered), from ``os.scandir``'s entry
    types instead of a ``stat`` and a ``Path`` per file (the scan runs at every check of every
    custody batch)."""
    out: dict[str, str] = {}
    todo = [(str(root), "")]
    while todo:
        folder, prefix = todo.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in listed:
            if entry.is_dir(follow_symlinks=False):
                todo.append((entry.path, f"{prefix}{entry.name}/"))
            elif entry.is_file():
                out[f"{prefix}{entry.name}"] = entry.path
    return out


def _directory_digest(root: Path) -> str:
    """SHA-256 over every file under ``root``: relative name, size and bytes, in name order."""
    if not root.is_dir():
        return ""
    digest = hashlib.sha256()
    for name, path in sorted(_files(root).items()):
        data = Path(path).read_bytes()
        encoded = name.encode("utf-8", "surrogateescape")
        digest.update(len(encoded).to_bytes(8, "big") + encoded + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


class CustodyWatch:
    """The batch's readings in a scratch ledger, checked, backed up; ransomware and ledger edits."""

    def __init__(
        self,
        steps: Sequence[Step],
        source: str,
        seed: int,
        watched: tuple[float, float],
        *,
        reuse_verification: bool = True,
    ) -> None:
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
        self._verified: tuple[tuple[str, tuple[str, ...]], str | None] | None = None
        self.reuse_verification = reuse_verification
        self.verifications_run = 0
        self.verifications_reused = 0
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
        self._expected_files = set(_files(self.data_dir))
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
        present = _files(self.data_dir)
        missing = sorted(self._expected_files - set(present))
        opaque = [
            name
            for name, path in present.items()
            if name not in self._expected_files and _entropy_bits_per_byte(Path(path).read_bytes()) > 7.5
        ]
        if missing and opaque:
            self.findings.append((time_h, "ransomware.encrypted_files"))
            self.impact.setdefault("missing_files", len(missing))
        if verify:
            if self._ledger is not None:
                self._ledger.close()
            try:
                outcome = self._verify()
                if outcome is not None:
                    self.findings.append((time_h, outcome))
            finally:
                self._ledger = (
                    Ledger.open(self.data_dir, site_key=self._site, clock=self._clock, create=False)
                    if not self._halted
                    else None
                )
        if missing and opaque and "records_restored" not in self.impact:
            self._restore()

    def _verify(self) -> str | None:
        """``verify_ledger`` of the data directory: None when it passes, else the Finding's statistic.

        Verification is a deterministic function of the directory's bytes, the site key and the
        trusted checkpoints. When all of them are what the last verification saw (every file's name
        and SHA-256 compared), the outcome is that verification's, and it is reused (ADR 0370); any
        change of any byte, file or checkpoint runs the full verification again.
        """
        state = (_directory_digest(self.data_dir), tuple(c.to_note() for c in self._kept))
        if self.reuse_verification and self._verified is not None and self._verified[0] == state:
            self.verifications_reused += 1
            return self._verified[1]
        outcome: str | None = None
        try:
            verify_ledger(self.data_dir, self._site.public, trusted=self._kept)
        except BackendError as exc:
            # Not a property of the bytes (a database that failed to answer): never reused.
            self.verifications_run += 1
            self._verified = None
            return f"ledger_verify.{type(exc).__name__}"
        except AsepticError as exc:
            outcome = f"ledger_verify.{type(exc).__name__}"
        self.verifications_run += 1
        self._verified = (state, outcome)
        return outcome

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

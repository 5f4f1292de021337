"""The quarantine store: one file per rejection with its sidecar, counts, quota, canonical events."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from telemetry_support import SOURCE, START, catalogue_readings, fixed_key

from aseptic.clock import SimClock
from aseptic.errors import BackendError, InputError, RollbackError
from aseptic.telemetry import EdgeSigner, Quarantine, QuarantineEvent, Rejection, RejectReason

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "A11-5")

MALFORMED = Rejection(RejectReason.MALFORMED, InputError("envelope 1: envelope is truncated at byte 3"))


def open_quarantine(tmp_path: Path, clock: SimClock, **kwargs: int) -> Quarantine:
    return Quarantine.open(
        tmp_path, clock=clock, max_stored_bytes=kwargs.pop("max_stored_bytes", 1024), **kwargs
    )


def test_rejection_is_kept_with_its_sidecar(tmp_path: Path) -> None:
    clock = SimClock(START)
    quarantine = open_quarantine(tmp_path, clock)
    event = quarantine.put(b"ASE", MALFORMED)
    digest = hashlib.sha256(b"ASE").hexdigest()
    assert event.file == f"20260101T060000000000Z-{digest[:16]}.bin"
    assert (tmp_path / "quarantine" / event.file).read_bytes() == b"ASE"
    sidecar = json.loads((tmp_path / "quarantine" / event.file.replace(".bin", ".json")).read_bytes())
    assert sidecar == {
        "authenticated": False,
        "digest": None,
        "error_class": "InputError",
        "file": event.file,
        "message": "envelope 1: envelope is truncated at byte 3",
        "reason": "malformed",
        "sequence": None,
        "sha256": digest,
        "size": 3,
        "source": None,
        "stored_sha256": digest,
        "stored_size": 3,
        "time": "2026-01-01T06:00:00.000000Z",
        "type": "aseptic.telemetry.quarantine/v1",
    }
    mode = stat.S_IMODE((tmp_path / "quarantine").stat().st_mode)
    assert mode == 0o700


def test_decoded_envelope_fields_are_recorded(tmp_path: Path) -> None:
    envelope = EdgeSigner(SOURCE, fixed_key(1)).seal(catalogue_readings(3))
    rejection = Rejection(RejectReason.REPLAY, RollbackError("sequence 1 repeats 1 (replay?)"), envelope)
    event = open_quarantine(tmp_path, SimClock(START)).put(envelope.to_bytes(), rejection)
    assert (event.source, event.sequence, event.digest) == (SOURCE, 1, envelope.digest_hex)
    assert event.authenticated and event.error_class == "RollbackError"


def test_same_bytes_twice_in_one_microsecond_get_two_files(tmp_path: Path) -> None:
    quarantine = open_quarantine(tmp_path, SimClock(START))
    first, second = quarantine.put(b"x", MALFORMED), quarantine.put(b"x", MALFORMED)
    assert first.file != second.file
    assert len(list((tmp_path / "quarantine").iterdir())) == 4
    assert quarantine.counts == {"malformed": 2}


def test_oversized_input_is_cut_at_the_limit(tmp_path: Path) -> None:
    quarantine = open_quarantine(tmp_path, SimClock(START), max_stored_bytes=100)
    raw = bytes(range(256)) * 4
    event = quarantine.put(raw, Rejection(RejectReason.OVERSIZE, InputError("too big")))
    assert event.file is not None
    assert (event.size, event.stored_size) == (1024, 100)
    assert (tmp_path / "quarantine" / event.file).read_bytes() == raw[:100]
    assert event.sha256 == hashlib.sha256(raw).hexdigest()
    assert event.stored_sha256 == hashlib.sha256(raw[:100]).hexdigest()


def test_quota_exhaustion_keeps_counting_and_events(tmp_path: Path) -> None:
    clock = SimClock(START)
    quarantine = open_quarantine(tmp_path, clock, quota_bytes=4096 + 600)
    stored = quarantine.put(b"a" * 100, MALFORMED)
    clock.advance(1)
    unstored = quarantine.put(b"b" * 100, MALFORMED)
    assert stored.file is not None and unstored.file is None and unstored.stored_size == 0
    assert unstored.sha256 == hashlib.sha256(b"b" * 100).hexdigest()
    assert quarantine.counts == {"malformed": 2} and quarantine.unstored == 1
    assert len(list((tmp_path / "quarantine").iterdir())) == 2
    reopened = open_quarantine(tmp_path, clock, quota_bytes=4096 + 600)
    assert reopened.put(b"c" * 100, MALFORMED).file is None  # the quota counts files already there


def test_full_disk_is_a_backend_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quarantine = open_quarantine(tmp_path, SimClock(START))

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(BackendError, match="cannot write quarantine file .*: No space left on device"):
        quarantine.put(b"x", MALFORMED)


def test_event_bytes_round_trip_and_are_canonical(tmp_path: Path) -> None:
    event = open_quarantine(tmp_path, SimClock(START + timedelta(microseconds=5))).put(b"\x00", MALFORMED)
    raw = event.to_bytes()
    assert QuarantineEvent.from_bytes(raw) == event
    assert b" " not in raw.replace(b"envelope 1: envelope is truncated at byte 3", b"")
    spaced = json.dumps(json.loads(raw), sort_keys=True).encode()
    with pytest.raises(InputError, match="not canonical"):
        QuarantineEvent.from_bytes(spaced)
    other = json.loads(raw)
    other["type"] = "aseptic.finding/v1"
    with pytest.raises(InputError, match="not a quarantine event"):
        QuarantineEvent.from_bytes(json.dumps(other, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(InputError, match="malformed"):
        QuarantineEvent.from_bytes(b"\xff{")

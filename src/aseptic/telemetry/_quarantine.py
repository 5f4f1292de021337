"""Quarantine: every rejected input kept as evidence, one file per rejection, and its ledger event.

``DATA/quarantine/<stamp>-<sha256 prefix>.bin`` holds the bytes as received, cut at the envelope size
limit (the true size and the SHA-256 of all of them are recorded, and of the part kept), and
``.json`` beside it holds the ``QuarantineEvent``: its canonical bytes, the same bytes the ledger
stores as the event's leaf.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from aseptic.clock import Clock, format_rfc3339, parse_rfc3339
from aseptic.errors import BackendError, InputError
from aseptic.telemetry._verify import CONTENT_REASONS, Rejection

__all__ = ["Quarantine", "QuarantineEvent", "QuarantineStore"]

EVENT_TYPE = "aseptic.telemetry.quarantine/v1"
DEFAULT_QUOTA_BYTES = 1024**3


@dataclass(frozen=True, slots=True)
class QuarantineEvent:
    """One rejected input, as recorded in the quarantine and appended to the ledger.

    ``source``, ``sequence`` and ``digest`` are what the input claimed, when it decoded that far;
    ``authenticated`` says whether its signature verified with a trusted key of that source (only
    then are they more than a claim). ``file`` is ``None`` when the quarantine quota was exhausted
    and only this event was kept.
    """

    time: datetime
    reason: str
    error_class: str
    message: str
    size: int
    sha256: str
    stored_size: int
    stored_sha256: str | None
    file: str | None
    source: str | None
    sequence: int | None
    digest: str | None
    authenticated: bool

    @property
    def in_chain(self) -> bool:
        """Whether the rejected envelope was authentic and next in its source's chain, and refused
        for its content alone: its source's chain moved past it, and this event stands in its place
        in the ledger (where a restarted verifier resumes, see ``Ledger.chain_heads``)."""
        return self.authenticated and self.reason in CONTENT_REASONS

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no white space, UTF-8), tagged with its type and version."""
        fields: dict[str, Any] = asdict(self)
        fields["time"] = format_rfc3339(self.time)
        fields["type"] = EVENT_TYPE
        return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> QuarantineEvent:
        """Parse canonical event bytes.

        Raises:
            InputError: not JSON, another type, missing or extra fields, or not the canonical form.
        """
        try:
            fields = json.loads(raw.decode("utf-8"))
            if not isinstance(fields, dict) or fields.pop("type", None) != EVENT_TYPE:
                raise InputError(f"not a quarantine event (expected type {EVENT_TYPE!r})")
            _check_fields(fields)
            fields["time"] = parse_rfc3339(fields["time"])
            event = cls(**fields)
        except InputError:
            raise
        except (UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
            raise InputError(f"quarantine event is malformed: {exc}") from None
        if event.to_bytes() != raw:
            raise InputError("quarantine event bytes are not canonical", hint="sorted keys, no white space")
        return event


class QuarantineStore(Protocol):
    """Where rejected inputs go (``Quarantine`` in a data directory; fakes in tests)."""

    def put(self, raw: bytes, rejection: Rejection) -> QuarantineEvent:
        """Keep ``raw`` and why it was rejected; the event to append to the ledger."""
        ...


class Quarantine:
    """The quarantine directory of a data directory, with counts per reason since it was opened.

    Each stored input is cut at ``max_stored_bytes`` (the envelope size limit), and the whole
    directory is held under ``quota_bytes``: beyond it, inputs are no longer stored, but every
    rejection still yields its event (``file`` = ``None``) for the ledger and is counted.
    """

    def __init__(
        self, directory: Path, *, clock: Clock, max_stored_bytes: int, quota_bytes: int = DEFAULT_QUOTA_BYTES
    ) -> None:
        self.directory = directory
        self._clock = clock
        self._max_stored = max_stored_bytes
        self._quota = quota_bytes
        self._used = sum(entry.stat().st_size for entry in os.scandir(directory) if entry.is_file())
        self._counts: dict[str, int] = {}
        self._unstored = 0

    @classmethod
    def open(
        cls, data_dir: Path, *, clock: Clock, max_stored_bytes: int, quota_bytes: int = DEFAULT_QUOTA_BYTES
    ) -> Quarantine:
        """The quarantine of ``data_dir`` (``data_dir/quarantine``, created owner-only if needed).

        Raises:
            BackendError: the directory cannot be created or read.
        """
        directory = data_dir / "quarantine"
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            return cls(directory, clock=clock, max_stored_bytes=max_stored_bytes, quota_bytes=quota_bytes)
        except OSError as exc:
            raise BackendError(f"cannot open quarantine directory {directory}: {exc.strerror}") from None

    @property
    def counts(self) -> Mapping[str, int]:
        """Rejections per reason since this quarantine was opened."""
        return dict(self._counts)

    @property
    def unstored(self) -> int:
        """Rejections whose bytes were not kept because the quota was reached."""
        return self._unstored

    def put(self, raw: bytes, rejection: Rejection) -> QuarantineEvent:
        """Write ``raw`` (cut at the size limit) and its event; the event.

        Raises:
            BackendError: the files cannot be written (disk full, permissions).
        """
        now = self._clock.now()
        digest = hashlib.sha256(raw).hexdigest()
        stored = raw[: self._max_stored]
        envelope = rejection.envelope
        stem = f"{now:%Y%m%dT%H%M%S%fZ}-{digest[:16]}"
        keep = self._used + len(stored) + 4096 <= self._quota  # 4 KiB: room for the sidecar
        name = self._free_name(stem) if keep else None
        event = QuarantineEvent(
            time=now,
            reason=str(rejection.reason),
            error_class=type(rejection.error).__name__,
            message=str(rejection.error),
            size=len(raw),
            sha256=digest,
            stored_size=len(stored) if keep else 0,
            stored_sha256=None if not keep else digest if len(stored) == len(raw) else _sha256_hex(stored),
            file=None if name is None else f"{name}.bin",
            source=None if envelope is None else envelope.source,
            sequence=None if envelope is None else envelope.sequence,
            digest=None if envelope is None else envelope.digest_hex,
            authenticated=rejection.authenticated,
        )
        if name is not None:
            sidecar = event.to_bytes()
            self._write(self.directory / f"{name}.bin", stored)
            self._write(self.directory / f"{name}.json", sidecar)
            self._used += len(stored) + len(sidecar)
        else:
            self._unstored += 1
        self._counts[event.reason] = self._counts.get(event.reason, 0) + 1
        return event

    def _free_name(self, stem: str) -> str:
        """``stem``, or ``stem-1``, ``stem-2``...: the same bytes rejected twice in one microsecond."""
        name, n = stem, 0
        while (self.directory / f"{name}.bin").exists() or (self.directory / f"{name}.json").exists():
            n += 1
            name = f"{stem}-{n}"
        return name

    def _write(self, path: Path, data: bytes) -> None:
        """Write-then-rename with fsync, so a crash leaves a whole file or none."""
        temporary = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise BackendError(f"cannot write quarantine file {path}: {exc.strerror}") from None


# What each field of a stored event must hold: a JSON type, and whether it may be null. Read back
# from the ledger or a sidecar an attacker may have edited, an event of another shape is refused.
_FIELD_TYPES: dict[str, tuple[type, bool]] = {
    "time": (str, False),
    "reason": (str, False),
    "error_class": (str, False),
    "message": (str, False),
    "size": (int, False),
    "sha256": (str, False),
    "stored_size": (int, False),
    "stored_sha256": (str, True),
    "file": (str, True),
    "source": (str, True),
    "sequence": (int, True),
    "digest": (str, True),
    "authenticated": (bool, False),
}
_TYPE_NAMES = {str: "a string", int: "an integer of 0 or more", bool: "true or false"}


def _check_fields(fields: dict[str, Any]) -> None:
    if set(fields) != set(_FIELD_TYPES):
        missing, extra = sorted(set(_FIELD_TYPES) - set(fields)), sorted(set(fields) - set(_FIELD_TYPES))
        raise InputError(f"quarantine event is malformed: missing fields {missing}, unknown fields {extra}")
    for name, (kind, nullable) in _FIELD_TYPES.items():
        value = fields[name]
        if value is None and nullable:
            continue
        # bool is an int in Python, not in JSON: true is no size and 1 is no verdict.
        valid = type(value) is kind
        if valid and isinstance(value, int) and kind is int:
            valid = value >= (1 if name == "sequence" else 0)
        if not valid:
            expected = _TYPE_NAMES[kind] + (" or null" if nullable else "")
            raise InputError(
                f"quarantine event is malformed: field {name!r} is {repr(value)[:80]}, expected {expected}"
            )


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]

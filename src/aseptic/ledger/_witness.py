"""A file-based witness: it cosigns a site's checkpoints, never a fork or a rollback.

A witness keeps, per log origin, the site key it pinned and the last checkpoint it cosigned. To
cosign a new checkpoint it needs a consistency proof from that last one; it refuses a smaller tree
(rollback), the same size with another root or a proof that fails (fork), a time going back, and a
checkpoint not signed by the pinned site key. Its cosignature is over the checkpoint's exact signed
body, so a bundle that carries it shows an independent party saw this tree head and found it
consistent with everything it had seen before (docs/ledger.md, "Witness").

Layout of the witness directory ``W``: ``W/keys/`` (its key store, key ``witness``), ``W/witness.pub``
(``<algorithm> <hex>``, what an auditor passes to ``--trust``), ``W/logs/<origin>.json`` (pinned
site key and last cosigned checkpoint note).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aseptic.clock import Clock, format_rfc3339, parse_rfc3339
from aseptic.crypto import KeyId, KeyStore, PublicKey, SigningKey, read_public_key
from aseptic.errors import (
    BackendError,
    ConfigError,
    InputError,
    IntegrityError,
    RollbackError,
    SignatureError,
)
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._proof import verify_consistency

__all__ = ["COSIGNATURE_HEADER", "WITNESS_KEY", "Cosignature", "Witness"]

COSIGNATURE_HEADER = "aseptic-cosignature/v1"
WITNESS_KEY = "witness"
WITNESS_PUB = "witness.pub"


@dataclass(frozen=True)
class Cosignature:
    """A witness's signature over a checkpoint body: "I saw this tree head, consistent with all before"."""

    witness: str
    key_id: KeyId
    algorithm: str
    time: datetime
    signature: bytes

    @staticmethod
    def message(witness: str, key_id: str, algorithm: str, time: datetime, body: bytes) -> bytes:
        head = (
            f"{COSIGNATURE_HEADER}\nwitness: {witness}\nkey: {key_id}\nalgorithm: {algorithm}\n"
            f"time: {format_rfc3339(time)}\n"
        )
        return head.encode("utf-8") + body

    def verify(self, checkpoint: Checkpoint, public_key: PublicKey) -> None:
        """Check this cosignature over ``checkpoint`` with the witness's ``public_key``.

        Raises:
            SignatureError: another key, or the signature does not verify.
        """
        what = f"cosignature by witness {self.witness!r} of checkpoint at size {checkpoint.size}"
        if self.key_id != public_key.key_id or self.algorithm != public_key.algorithm:
            raise SignatureError(f"{what}: made with key {self.key_id}, not {public_key.key_id}")
        message = self.message(self.witness, self.key_id, self.algorithm, self.time, checkpoint.body)
        public_key.verify(self.signature, message, what=what)

    def to_json(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "key": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "time": format_rfc3339(self.time),
            "witness": self.witness,
        }

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> Cosignature:
        """Read a cosignature written by ``to_json``.

        Raises:
            InputError: a field is missing or malformed.
        """
        try:
            return cls(
                str(fields["witness"]),
                KeyId(str(fields["key"])),
                str(fields["algorithm"]),
                parse_rfc3339(str(fields["time"])),
                base64.b64decode(str(fields["signature"]), validate=True),
            )
        except (KeyError, ValueError, binascii.Error) as exc:
            raise InputError(f"malformed cosignature ({exc!r})") from None


class Witness:
    """The witness of directory ``W`` (create with ``Witness.init``, then ``Witness.open``)."""

    def __init__(self, directory: Path, name: str, key: SigningKey, clock: Clock) -> None:
        self.directory = directory
        self.name = name
        self._key = key
        self._clock = clock

    @property
    def public_key(self) -> PublicKey:
        return self._key.public

    @classmethod
    def init(cls, directory: Path, name: str, clock: Clock) -> Witness:
        """Create the witness key and ``witness.pub`` in ``directory`` (idempotent).

        Raises:
            ConfigError: ``directory`` belongs to a witness of another name.
            BackendError: files cannot be written.
        """
        meta = directory / "witness.json"
        if meta.exists():
            existing = cls.open(directory, clock)
            if existing.name != name:
                raise ConfigError(f"{directory} is the witness {existing.name!r}, not {name!r}")
            return existing
        key = KeyStore.open(directory).load_or_create(WITNESS_KEY)
        _write_atomic(directory / WITNESS_PUB, f"{key.public.algorithm} {key.public.raw.hex()}\n")
        _write_atomic(meta, json.dumps({"name": name}) + "\n")
        return cls(directory, name, key, clock)

    @classmethod
    def open(cls, directory: Path, clock: Clock) -> Witness:
        """Open an initialised witness directory.

        Raises:
            ConfigError: not a witness directory, or its key cannot be loaded.
        """
        meta = directory / "witness.json"
        try:
            name = str(json.loads(meta.read_text(encoding="utf-8"))["name"])
        except FileNotFoundError:
            raise ConfigError(
                f"{directory} is not a witness directory",
                hint=f"aseptic witness init --witness-dir {directory}",
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{meta} is unreadable ({exc})") from None
        key = KeyStore(directory / "keys").load(WITNESS_KEY)
        if read_public_key(directory / WITNESS_PUB) != key.public:
            raise ConfigError(f"{directory / WITNESS_PUB} does not hold this witness's key")
        return cls(directory, name, key, clock)

    def last_cosigned(self, origin: str) -> tuple[PublicKey, Checkpoint] | None:
        """The pinned site key and last cosigned checkpoint of log ``origin`` (None: never seen)."""
        path = self._state_path(origin)
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            algorithm, hex_raw = str(state["site_key"]).split()
            key = PublicKey.from_raw(algorithm, bytes.fromhex(hex_raw))
            return key, Checkpoint.from_note(str(state["checkpoint"]))
        except (OSError, ValueError, KeyError, TypeError, InputError) as exc:
            raise IntegrityError(f"witness state {path} is damaged ({exc})") from None

    def cosign(self, checkpoint: Checkpoint, site_key: PublicKey, proof: Sequence[bytes]) -> Cosignature:
        """Cosign ``checkpoint`` after checking it against the last one cosigned for its origin.

        ``proof`` is the consistency proof from the last cosigned checkpoint's size to this one's
        (empty the first time). The first checkpoint of an origin pins ``site_key``.

        Raises:
            SignatureError: not signed by the pinned site key (or a different key than pinned).
            RollbackError: a smaller tree or an earlier time than the last cosigned checkpoint.
            ProofError / IntegrityError: not consistent with the last cosigned checkpoint (a fork).
        """
        where = f"witness {self.name!r}: checkpoint of {checkpoint.origin!r} at size {checkpoint.size}"
        known = self.last_cosigned(checkpoint.origin)
        pinned = site_key if known is None else known[0]
        if pinned != site_key:
            raise SignatureError(
                f"{where}: the site key offered ({site_key.key_id}) is not the one pinned ({pinned.key_id})",
                hint="a site key change must be accepted by the witness operator, not silently",
            )
        checkpoint.verify(pinned)
        if known is not None:
            last = known[1]
            if checkpoint.size < last.size:
                raise RollbackError(f"{where}: smaller than the last cosigned size {last.size} (rollback)")
            if checkpoint.time < last.time:
                raise RollbackError(
                    f"{where}: time {format_rfc3339(checkpoint.time)} is before the last cosigned"
                    f" {format_rfc3339(last.time)}"
                )
            if checkpoint.size == last.size and checkpoint.root != last.root:
                raise IntegrityError(
                    f"{where}: same size as the last cosigned but another root (fork):"
                    f" expected {last.root.hex()}, got {checkpoint.root.hex()}"
                )
            try:
                verify_consistency(last.size, checkpoint.size, proof, last.root, checkpoint.root)
            except IntegrityError as exc:
                raise IntegrityError(
                    f"{where}: not consistent with the last cosigned (fork?): {exc}"
                ) from None
        now = self._clock.now()
        key = self._key
        message = Cosignature.message(self.name, key.key_id, key.algorithm, now, checkpoint.body)
        cosignature = Cosignature(self.name, key.key_id, key.algorithm, now, key.sign(message))
        state = {"checkpoint": checkpoint.to_note(), "site_key": f"{pinned.algorithm} {pinned.raw.hex()}"}
        _write_atomic(self._state_path(checkpoint.origin), json.dumps(state, indent=2) + "\n")
        return cosignature

    def _state_path(self, origin: str) -> Path:
        return self.directory / "logs" / f"{origin}.json"


def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None

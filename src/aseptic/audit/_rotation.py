"""Rotating the site key with its retirement in the log (issue 5, part 3).

Order, so that a crash at any point can be resumed by running the rotation again: the key files
first (``KeyStore.rotate``: the old key is kept under ``keys/retired/``), then the log
(``Ledger.rotate_site_key``: the rotation entry signed by both keys, the old key's retirement
checkpoint, ``site.pub`` replaced by the new key). A re-run that finds ``site.pub`` still naming a
retired key finishes the log part with the retired key and the new one. Stop the service first:
a process still holding the old key would sign past its retirement point, which verification refuses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aseptic.audit._clock_sync import SyncProbe, read_host_clock_sync
from aseptic.audit._entry import AuditEntry, Change
from aseptic.clock import Clock
from aseptic.crypto import SITE_KEY, KeyId, KeyStore, PublicKey, SigningKey, read_public_key
from aseptic.errors import BackendError, ConfigError
from aseptic.ledger import KEY_RECORD, Ledger, LogReader

__all__ = ["KeyRotation", "rotate_site_key"]


@dataclass(frozen=True)
class KeyRotation:
    """What a rotation did: the retired and the new key, the rotation's leaf, the retirement point."""

    retired: KeyId
    successor: KeyId
    leaf: int
    retired_at_size: int


def rotate_site_key(
    keys: KeyStore,
    data_dir: Path,
    *,
    clock: Clock,
    origin: str,
    who: str,
    why: str,
    algorithm: str | None = None,
    clock_sync: SyncProbe = read_host_clock_sync,
) -> KeyRotation:
    """Retire the site key for a new one (``algorithm``, default the old key's) and log it.

    Raises:
        InputError: no reason, or ``who`` is not an identity name.
        ConfigError: ``site.pub`` names a key the store does not hold (live or retired), or no ledger.
        BackendError: files cannot be written.
    """
    anchor = read_public_key(data_dir / "site.pub")
    current = keys.public(SITE_KEY)
    # Checked before anything changes: a rotation without a reason is refused like any change.
    _entry(clock, clock_sync, origin, who, why, "retiring", "successor")
    if anchor == current:
        old = keys.load(SITE_KEY)
        new = keys.rotate(SITE_KEY, algorithm)
    else:  # resume: the key files were rotated, the log was not (or site.pub was not yet replaced)
        if anchor not in keys.retired(SITE_KEY):
            raise ConfigError(
                f"{data_dir / 'site.pub'} names {anchor.key_id}, which the key store does not hold",
                hint="check --data-dir and the key store",
            )
        old, new = keys.load_retired(SITE_KEY, anchor.key_id), keys.load(SITE_KEY)
        finished = _logged_rotation(data_dir, anchor, new)
        if finished is not None:
            return finished
    fields = _entry(clock, clock_sync, origin, who, why, old.key_id, new.key_id).to_payload()
    with Ledger.open(data_dir, site_key=old, clock=clock, origin=origin, create=False) as ledger:
        leaf, checkpoint = ledger.rotate_site_key(new, fields)
    return KeyRotation(old.key_id, new.key_id, leaf, checkpoint.size)


def _logged_rotation(data_dir: Path, anchor: PublicKey, new: SigningKey) -> KeyRotation | None:
    """If the log already retired ``anchor`` for ``new`` (a crash before site.pub was replaced),
    replace site.pub and return that rotation."""
    with LogReader.open(data_dir) as reader:
        chain = reader.site_keys(new.public)
    if chain.current != new.public or len(chain.keys) < 2 or chain.keys[-2] != anchor:
        return None
    path = data_dir / "site.pub"
    try:
        temporary = path.with_suffix(".pub.tmp")
        temporary.write_text(f"{new.public.algorithm} {new.public.raw.hex()}\n", encoding="ascii")
        os.replace(temporary, path)
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None
    return KeyRotation(chain.keys[-2].key_id, new.key_id, -1, -1)


def _entry(
    clock: Clock, clock_sync: SyncProbe, origin: str, who: str, why: str, old: str, new: str
) -> AuditEntry:
    return AuditEntry(
        record=KEY_RECORD,
        change=Change.MODIFY,
        old=old,
        new=new,
        who=who,
        when=clock.now(),
        clock_sync=clock_sync(),
        why=why,
        system=origin,
    )

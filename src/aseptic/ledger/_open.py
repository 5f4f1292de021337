"""Opening a ledger for appends: the trust anchor file and the frontier the next append builds on.

The frontier is rebuilt from the stored leaf hashes, starting from a cached frontier in ``state.db``
when one matches the latest checkpoint: that checkpoint's signature is verified first and its root
must come out of the frontier, so the cache is never trusted on its own. Opening fails closed when
the log is shorter than a checkpoint it signed or its leaves no longer give that checkpoint's root.
"""

from __future__ import annotations

import os
from pathlib import Path

from aseptic.crypto import PublicKey, read_public_key
from aseptic.errors import BackendError, ConfigError, IntegrityError, RollbackError
from aseptic.ledger._entries import LeafKind
from aseptic.ledger._rotation import KEY_RECORD, SiteKeys
from aseptic.ledger._state import FrontierCache
from aseptic.ledger._store import LogStore
from aseptic.ledger._tree import Frontier

__all__ = ["replace_trust_anchor", "restore_frontier", "site_keys_of", "write_trust_anchor"]

_VERIFY_HINT = "run `aseptic ledger verify` to find what was changed"


def write_trust_anchor(path: Path, public_key: PublicKey) -> None:
    """Write ``site.pub`` (``<algorithm> <hex>``) if absent; refuse if it holds another key.

    Raises:
        ConfigError: ``path`` holds a different key than the site key in use.
        BackendError: the file cannot be written.
    """
    if path.exists():
        existing = read_public_key(path)
        if existing != public_key:
            raise ConfigError(
                f"{path} holds key {existing.key_id}, but the site key in use is {public_key.key_id}",
                hint="a ledger is signed by one site key; check --data-dir and the key store",
            )
        return
    replace_trust_anchor(path, public_key)


def replace_trust_anchor(path: Path, public_key: PublicKey) -> None:
    """Write ``site.pub`` atomically (after a logged site key rotation, the new key).

    Raises:
        BackendError: the file cannot be written.
    """
    text = f"{public_key.algorithm} {public_key.raw.hex()}\n"
    try:
        tmp = path.with_suffix(".pub.tmp")
        tmp.write_text(text, encoding="ascii")
        os.replace(tmp, path)
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None


def site_keys_of(store: LogStore, anchor: PublicKey) -> SiteKeys:
    """The site key chain from the key-rotation entries in the store's ``audit`` table."""
    needle = f'"record":"{KEY_RECORD}"'.encode()
    return SiteKeys.from_entries(anchor, store.entries_containing(LeafKind.AUDIT, needle))


def restore_frontier(store: LogStore, state: FrontierCache, public_key: PublicKey, origin: str) -> Frontier:
    """The frontier of every stored leaf, checked against the latest signed checkpoint.

    Raises:
        ConfigError: the latest checkpoint names another origin.
        SignatureError: the latest checkpoint does not verify with ``public_key``.
        RollbackError: fewer leaves are stored than the latest checkpoint signed.
        IntegrityError: the stored leaves give another root than the latest checkpoint's.
    """
    count = store.leaf_count()
    latest = store.latest_checkpoint()
    keys = site_keys_of(store, public_key)  # the logged site key rotations
    if keys.current != public_key:
        raise ConfigError(
            f"{store.where}: site key {public_key.key_id} was retired;"
            f" the key in force is {keys.current.key_id}",
            hint="a retired key signs nothing new; check the key store (keys/site.key)",
        )
    if latest is None:
        frontier = Frontier()
        for leaf_hash in store.iter_leaf_hashes(0, count):
            frontier.append(leaf_hash)
        _check_contiguous(store, frontier, count)
        return frontier
    where = f"{store.where}: checkpoint at size {latest.size}"
    if latest.origin != origin:
        raise ConfigError(
            f"{where} is for origin {latest.origin!r}, this site is {origin!r}",
            hint="check [site].id in the config and --data-dir",
        )
    keys.verify_checkpoint(latest)
    if count < latest.size:
        raise RollbackError(f"{where}: only {count} leaves are stored (truncated log)", hint=_VERIFY_HINT)
    cached = state.get(latest.size)
    if cached is not None and cached.root == latest.root:
        frontier = cached
    else:
        frontier = Frontier()
        for leaf_hash in store.iter_leaf_hashes(0, latest.size):
            frontier.append(leaf_hash)
        if frontier.root != latest.root:
            raise IntegrityError(
                f"{where}: signed root {latest.root.hex()}, stored leaves give {frontier.root.hex()}",
                hint=_VERIFY_HINT,
            )
        state.put(frontier)
    for leaf_hash in store.iter_leaf_hashes(latest.size, count):
        frontier.append(leaf_hash)
    _check_contiguous(store, frontier, count)
    return frontier


def _check_contiguous(store: LogStore, frontier: Frontier, count: int) -> None:
    if frontier.size != count:
        raise IntegrityError(
            f"{store.where}: leaf indexes run to {count - 1} but only {frontier.size} leaves are stored",
            hint=_VERIFY_HINT,
        )

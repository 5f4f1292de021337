"""``read_status``: what a ledger holds, read without any key (not a verification: see verify_ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.errors import ConfigError
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._state import FrontierCache
from aseptic.ledger._store import open_store
from aseptic.ledger._tree import Frontier, Hash

__all__ = ["LedgerStatus", "read_checkpoints", "read_status"]


@dataclass(frozen=True)
class LedgerStatus:
    """Size, root and contents of a ledger, and its latest checkpoint (as stored, not verified)."""

    ledger: str
    size: int
    root: Hash
    leaves: dict[str, int]
    readings: int
    checkpoints: int
    latest_checkpoint: Checkpoint | None

    def to_json(self) -> dict[str, Any]:
        latest = self.latest_checkpoint
        return {
            "ledger": self.ledger,
            "size": self.size,
            "root": self.root.hex(),
            "leaves": self.leaves,
            "readings": self.readings,
            "checkpoints": self.checkpoints,
            "latest_checkpoint": None
            if latest is None
            else {
                "size": latest.size,
                "root": latest.root.hex(),
                "time": format_rfc3339(latest.time),
                "origin": latest.origin,
                "key_id": latest.key_id,
                "leaves_since": self.size - latest.size,
            },
        }


def read_status(data_dir: Path) -> LedgerStatus:
    """Read the status of ``data_dir/ledger.db`` (read-only).

    Raises:
        ConfigError: no data directory or no ledger in it.
        InputError: the file is not a ledger, or its latest checkpoint body is unreadable.
        IntegrityError: the file is corrupt.
    """
    if not data_dir.is_dir():
        raise ConfigError(f"data directory {data_dir} does not exist", hint="check --data-dir")
    store = open_store(data_dir, read_only=True)
    cache = FrontierCache.open_read_only(data_dir / "state.db")
    try:
        latest = store.latest_checkpoint()
        count = store.leaf_count()
        frontier: Frontier | None = None
        if latest is not None and cache is not None and latest.size <= count:
            frontier = cache.get(latest.size)
            if frontier is not None and frontier.root != latest.root:
                frontier = None
        if frontier is None:
            frontier = Frontier()
        for leaf_hash in store.iter_leaf_hashes(frontier.size, count):
            frontier.append(leaf_hash)
        kinds, readings, checkpoints = store.counts()
    finally:
        store.close()
        if cache is not None:
            cache.close()
    return LedgerStatus(store.where, frontier.size, frontier.root, kinds, readings, checkpoints, latest)


def read_checkpoints(data_dir: Path) -> tuple[Checkpoint, ...]:
    """Every stored checkpoint of the ledger of ``data_dir``, oldest first (read-only, not verified).

    Raises:
        ConfigError: no ledger in ``data_dir``.
        InputError: a stored checkpoint body is unreadable.
    """
    store = open_store(data_dir, read_only=True)
    try:
        return tuple(store.checkpoints())
    finally:
        store.close()

"""The append process's side (``AppendProcess``, ADR 0360), run as a script by its path
(``python -P .../_append_child.py READ_FD WRITE_FD``), not with ``-m``: importing the package
``aseptic.ledger`` would load everything its ``__init__`` exports (telemetry, the twin, scipy: about a
second of CPU at every start) for the few modules an appender needs."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

from aseptic.errors import AsepticError, BackendError

if TYPE_CHECKING:
    from aseptic.ledger._append_process import _Duplex
    from aseptic.ledger._store import LogStore
    from aseptic.ledger._tree import Frontier

__all__: list[str] = []


def _load_without_package_init() -> None:
    """Import the ledger's modules this process needs without ``aseptic.ledger.__init__``, which
    loads everything (telemetry, the twin, scipy: about a second of CPU at every start)."""
    if "aseptic.ledger" in sys.modules:
        return
    package = types.ModuleType("aseptic.ledger")
    package.__path__ = [str(Path(__file__).resolve().parent)]
    sys.modules["aseptic.ledger"] = package


def _serve(conn: _Duplex) -> None:
    """The child's loop: open the store, then append groups until told to close (or the pipe ends)."""
    from aseptic.ledger._store import open_store
    from aseptic.ledger._tree import Frontier

    message = conn.recv()
    _, data_dir, url, size, nodes = message
    try:
        store = open_store(Path(data_dir), create=False, url=url)
    except AsepticError as exc:
        conn.send(("error", f"cannot open the ledger store of {data_dir}: {exc}"))
        return
    frontier = Frontier(size, nodes)
    conn.send(("ok", None))
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return  # the owner is gone: whatever it was not told is committed is not acknowledged
            op = message[0]
            if op == "close":
                return
            if op == "state":
                conn.send(("ok", (frontier.size, list(frontier.nodes))))
            elif op == "resume":
                frontier = Frontier(message[1], message[2])
                conn.send(("ok", None))
            elif op == "append":
                saved = frontier.copy()
                try:
                    first = _append(store, frontier, message[1])
                except AsepticError as exc:
                    frontier = saved
                    conn.send(("error", f"{type(exc).__name__}: {exc}"))
                else:
                    conn.send(("ok", first))
            else:
                conn.send(("error", f"unknown request {op!r}"))
    finally:
        store.close()


def _append(store: LogStore, frontier: Frontier, runs: list[tuple[str, list[bytes]]]) -> int:
    from aseptic.ledger._entries import LeafKind, hash_entry

    first = frontier.size
    with store.transaction():
        stored = store.leaf_count()
        if stored != frontier.size:
            raise BackendError(
                f"{store.where} has {stored} leaves, the append process expected {frontier.size}",
                hint="only one process may append to a ledger",
            )
        for value, payloads in runs:
            kind = LeafKind(value)
            start = frontier.size
            rows = [(start + n, hash_entry(kind, payload), payload) for n, payload in enumerate(payloads)]
            store.insert_payloads(kind, rows)
            for _, leaf_hash, _ in rows:
                frontier.append(leaf_hash)
    return first


def _main(argv: list[str]) -> int:
    _load_without_package_init()
    from aseptic.ledger._append_process import _Duplex

    conn = _Duplex(int(argv[0]), int(argv[1]))
    try:
        _serve(conn)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run by path without -P: the package's modules are not top-level modules
    sys.exit(_main(sys.argv[1:]))

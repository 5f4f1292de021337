"""The Ledger: the site's append-only Merkle log, with signed checkpoints.

One writer per data directory. Each append hashes the entry, inserts the leaf and its rows in one
transaction of the store (``D/ledger.db``, SQLite with ``synchronous=FULL``, or the PostgreSQL
database named in ``D/ledger.store``: ``LogStore``, ``_store.py``), and advances the in-memory
frontier, so the current root is always known. ``batch()`` groups many appends into one
transaction (one fsync) for ingest throughput; a crash loses the whole open batch or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from aseptic.clock import Clock
from aseptic.crypto import PublicKey, SigningKey
from aseptic.errors import BackendError, ConfigError, InputError, IntegrityError, RollbackError
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._entries import (
    JSON_KINDS,
    LeafKind,
    canonical_json,
    decode_key_payload,
    encode_key_payload,
    hash_entry,
    reading_rows,
)
from aseptic.ledger._historian import StoredReading, query_readings
from aseptic.ledger._open import replace_trust_anchor, restore_frontier, write_trust_anchor
from aseptic.ledger._proof import consistency_proof, inclusion_proof
from aseptic.ledger._rotation import rotation_entry
from aseptic.ledger._state import FrontierCache
from aseptic.ledger._store import LogStore, bind_store, has_ledger, open_store
from aseptic.ledger._tree import Frontier, Hash, root_of
from aseptic.telemetry import Envelope, QuarantineEvent

__all__ = ["DEFAULT_ORIGIN", "Ledger"]

DEFAULT_ORIGIN = "site-01"


class Ledger:
    """The append-only log of one site. Open with ``Ledger.open``; close (or use ``with``) when done."""

    def __init__(
        self,
        store: LogStore,
        state: FrontierCache,
        frontier: Frontier,
        *,
        site_key: SigningKey,
        clock: Clock,
        origin: str,
        data_dir: Path,
        store_url: str | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._store_url = store_url
        self._store = store
        self._state = state
        self._frontier = frontier
        self._site_key = site_key
        self._clock = clock
        self.origin = origin
        self._batch_depth = 0

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        site_key: SigningKey,
        clock: Clock,
        origin: str = DEFAULT_ORIGIN,
        create: bool = True,
        store: str | None = None,
    ) -> Ledger:
        """Open the ledger of ``data_dir`` (created on first use if ``create``); write ``site.pub`` if absent.

        The tables live in ``data_dir/ledger.db`` unless ``store`` (a ``postgresql://`` URL without a
        password) or the ``ledger.store`` file of ``data_dir`` names a PostgreSQL database; a given
        ``store`` is recorded there on first use. ``site.pub`` and ``state.db`` stay in ``data_dir``.

        Raises:
            ConfigError: no ledger and not ``create``, ``site.pub`` holds another key, the ledger
                belongs to another origin, or ``store`` is not the store ``data_dir`` is bound to.
            SignatureError: the latest checkpoint is not signed by ``site_key``.
            RollbackError: the log has fewer leaves than its latest checkpoint (truncated).
            IntegrityError: the stored leaves do not give the latest checkpoint's root, or the file is
                corrupt (run ``aseptic ledger verify`` for the details).
            BackendError: the files cannot be created or SQLite fails.
        """
        if not create and not has_ledger(data_dir) and store is None:
            raise ConfigError(
                f"no ledger in {data_dir}", hint="check --data-dir, or run `aseptic ledger init`"
            )
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create data directory {data_dir}: {exc.strerror}") from None
        write_trust_anchor(data_dir / "site.pub", site_key.public)
        url = bind_store(data_dir, store, record=False)
        log_store = open_store(data_dir, create=True, url=url)
        try:
            bind_store(data_dir, url)  # recorded only once its database opened
            state = FrontierCache.open(data_dir / "state.db")
        except BaseException:
            log_store.close()
            raise
        try:
            frontier = restore_frontier(log_store, state, site_key.public, origin)
        except BaseException:
            log_store.close()
            state.close()
            raise
        return cls(
            log_store,
            state,
            frontier,
            site_key=site_key,
            clock=clock,
            origin=origin,
            data_dir=data_dir,
            store_url=url,
        )

    def close(self) -> None:
        self._store.close()
        self._state.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the tree ---------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of leaves in the log."""
        return self._frontier.size

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def store_url(self) -> str | None:
        """The PostgreSQL store's URL this ledger was opened with (no password), None for SQLite."""
        return self._store_url

    def frontier_state(self) -> tuple[int, tuple[Hash, ...]]:
        """``(size, nodes)`` of the Merkle frontier: what an ``AppendProcess`` appends after.

        Raises:
            ConfigError: inside ``batch()`` (uncommitted leaves cannot be handed over).
        """
        if self._batch_depth:
            raise ConfigError("the frontier cannot be handed over inside an open batch")
        return self._frontier.size, self._frontier.nodes

    def adopt_frontier(self, size: int, nodes: Sequence[bytes]) -> None:
        """Take back the appends from an ``AppendProcess``: continue from its frontier.

        Raises:
            ConfigError: inside ``batch()``, or ``nodes`` is not a frontier of ``size`` leaves.
            BackendError: the store does not hold ``size`` leaves (another writer, or a lost group).
        """
        if self._batch_depth:
            raise ConfigError("the frontier cannot be taken back inside an open batch")
        try:
            frontier = Frontier(size, nodes)
        except ValueError as exc:
            raise ConfigError(f"not a ledger frontier: {exc}") from None
        stored = self._store.leaf_count()
        if stored != size:
            raise BackendError(
                f"{self._store.where} has {stored} leaves, the handed-back frontier {size}",
                hint="only one process may append to a ledger; restart this one",
            )
        self._frontier = frontier

    @property
    def root(self) -> Hash:
        """The tree head of all ``size`` leaves."""
        return self._frontier.root

    def leaf_hash(self, index: int) -> Hash:
        """The stored hash of leaf ``index``."""
        if not 0 <= index < self.size:
            raise InputError(f"leaf {index} is not in a log of {self.size} leaves")
        return next(self._store.iter_leaf_hashes(index, index + 1))

    def root_at(self, size: int) -> Hash:
        """The tree head of the first ``size`` leaves (reads them all: O(size))."""
        if not 0 <= size <= self.size:
            raise InputError(f"no tree of {size} leaves in a log of {self.size}")
        return self._subtree_root(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> tuple[Hash, ...]:
        """The audit path of leaf ``index`` in the tree of ``size`` leaves (default: all)."""
        size = self.size if size is None else size
        if size > self.size:
            raise InputError(f"no tree of {size} leaves in a log of {self.size}")
        return inclusion_proof(index, size, self._subtree_root)

    def consistency_proof(self, size1: int, size2: int | None = None) -> tuple[Hash, ...]:
        """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2`` (default: all)."""
        size2 = self.size if size2 is None else size2
        if size2 > self.size:
            raise InputError(f"no tree of {size2} leaves in a log of {self.size}")
        return consistency_proof(size1, size2, self._subtree_root)

    def _subtree_root(self, start: int, end: int) -> Hash:
        # The frontier already holds the perfect subtrees on the right edge of the current tree.
        for (node_start, node_end), node in zip(self._frontier.ranges(), self._frontier.nodes, strict=True):
            if (node_start, node_end) == (start, end):
                return node
        return root_of(list(self._store.iter_leaf_hashes(start, end)))

    # -- appends ----------------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the appends made inside the block into one transaction (committed at the end)."""
        saved = self._frontier.copy()
        if self._batch_depth:
            # Nested (an append inside a caller's batch): undo just this part if it fails, so a
            # caller that catches the error and goes on never commits half an entry.
            self._batch_depth += 1
            try:
                with self._store.savepoint():
                    yield
            except BaseException:
                self._frontier = saved
                raise
            finally:
                self._batch_depth -= 1
            return
        try:
            with self._store.transaction():
                self._check_single_writer()
                self._batch_depth = 1
                yield
        except BaseException:
            self._frontier = saved
            raise
        finally:
            self._batch_depth = 0

    def _check_single_writer(self) -> None:
        stored = self._store.leaf_count()
        if stored != self._frontier.size:
            raise BackendError(
                f"{self._store.where} has {stored} leaves, this writer expected {self._frontier.size}",
                hint="only one process may append to a ledger; restart this one",
            )

    def append_envelope(self, envelope: Envelope, raw: bytes) -> int:
        """Log a verified envelope (its exact bytes) and its readings; return its leaf index."""
        with self.batch():
            index = self._frontier.size
            leaf_hash = hash_entry(LeafKind.ENVELOPE, raw)
            row = (envelope.source, envelope.sequence, bytes(envelope.digest), bytes(raw))
            self._store.insert_envelope(index, leaf_hash, row, reading_rows(index, envelope))
            self._frontier.append(leaf_hash)
        return index

    def append_finding(self, payload: Mapping[str, Any] | bytes) -> int:
        """Log a finding as canonical JSON (sorted keys, no white space, UTF-8); return its leaf index.

        Raises:
            InputError: the payload is not a JSON object, or bytes that are not canonical JSON.
        """
        return self.append_entry(LeafKind.FINDING, payload)

    def append_findings(self, payloads: Iterable[Mapping[str, Any] | bytes]) -> range:
        """Log many findings as consecutive leaves in one transaction (see ``append_entries``)."""
        return self.append_entries(LeafKind.FINDING, payloads)

    def append_entry(self, kind: LeafKind, payload: Mapping[str, Any] | bytes) -> int:
        """Log one canonical JSON entry of a JSON kind (finding, audit, decision, signature).

        Raises:
            InputError: ``kind`` does not hold JSON, or the payload is not a JSON object, or bytes that
                are not canonical JSON.
        """
        _require_json_kind(kind)
        return self._append_payload(kind, canonical_json(payload))

    def append_entries(self, kind: LeafKind, payloads: Iterable[Mapping[str, Any] | bytes]) -> range:
        """Log many canonical JSON entries of one kind as consecutive leaves in one transaction.

        For group commit (the access decision log): one transaction and no savepoint per entry.
        Every payload is checked before anything is written; if any write fails, none is kept.

        Raises:
            InputError: ``kind`` does not hold JSON, a payload is not a JSON object, or bytes that are
                not canonical JSON.
        """
        _require_json_kind(kind)
        return self._append_encoded(kind, [canonical_json(payload) for payload in payloads])

    def append_canonical_entries(self, kind: LeafKind, payloads: Sequence[bytes]) -> range:
        """``append_entries`` for payloads the caller has already encoded as canonical JSON.

        For the access decision log (ADR 0260), whose entries come from ``canonical_json`` or an
        encoder proven equal to it: re-checking them here (decode and re-encode each) would cost
        more than the append itself. Nothing is checked but the kind; a payload that is not
        canonical JSON is a caller's bug that ``verify_ledger`` reports as a discrepancy.

        Raises:
            InputError: ``kind`` does not hold JSON.
        """
        _require_json_kind(kind)
        return self._append_encoded(kind, payloads)

    def _append_encoded(self, kind: LeafKind, encoded: Sequence[bytes]) -> range:
        with self.batch():
            first = self._frontier.size
            rows = [(first + n, hash_entry(kind, payload), payload) for n, payload in enumerate(encoded)]
            self._store.insert_payloads(kind, rows)
            for _, leaf_hash, _ in rows:
                self._frontier.append(leaf_hash)
        return range(first, first + len(encoded))

    def entries(self, kind: LeafKind, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]:
        """``(leaf index, payload)`` of every entry of a JSON kind with ``start <= index < end``, in
        log order. The payloads are the stored bytes; ``verify_ledger`` is what proves them."""
        _require_json_kind(kind)
        return self._store.payloads(kind, start, self.size if end is None else end)

    def append_quarantine(self, event: QuarantineEvent) -> int:
        """Log a quarantine event by its canonical bytes; return its leaf index."""
        return self._append_payload(LeafKind.QUARANTINE, event.to_bytes())

    def append_key(self, name: str, public_key: PublicKey) -> int:
        """Log a collector's public key so that verification can check its envelopes' signatures."""
        if not name:
            raise InputError("a logged key needs a name")
        return self._append_payload(LeafKind.KEY, encode_key_payload(name, public_key))

    def chain_heads(self) -> dict[str, tuple[int, bytes]]:
        """Per source, the sequence and digest of its last envelope in the log (where a restarted
        collector and verifier resume): the last logged envelope, or a later one refused for its
        content alone, whose quarantine event stands in its place (``QuarantineEvent.in_chain``).
        Any other rejected envelope is never a head.

        Raises:
            IntegrityError: a logged quarantine event does not parse (the log was altered).
        """
        heads = {source: (sequence, bytes(digest)) for source, sequence, digest in self._store.chain_heads()}
        for leaf, payload in self._store.entries_containing(LeafKind.QUARANTINE, b'"authenticated":true'):
            try:
                event = QuarantineEvent.from_bytes(payload)
                if not event.in_chain or event.source is None or event.sequence is None:
                    continue
                digest = bytes.fromhex(event.digest or "")
                if len(digest) != 32:  # SHA-256
                    raise ValueError(f"digest {event.digest!r} is not 32 bytes of hex")
            except (InputError, ValueError) as exc:
                raise IntegrityError(
                    f"{self._store.where}: quarantine event at leaf {leaf} is not valid ({exc})",
                    hint="run `aseptic ledger verify` for the details",
                ) from None
            if event.sequence > heads.get(event.source, (0, b""))[0]:
                heads[event.source] = (event.sequence, digest)
        return heads

    def logged_keys(self) -> dict[str, tuple[PublicKey, ...]]:
        """Per name, the public keys logged with ``append_key``, oldest first."""
        keys: dict[str, list[PublicKey]] = {}
        for payload in self._store.key_payloads():
            name, key = decode_key_payload(payload)
            keys.setdefault(name, []).append(key)
        return {name: tuple(listed) for name, listed in keys.items()}

    def _append_payload(self, kind: LeafKind, payload: bytes) -> int:
        with self.batch():
            index = self._frontier.size
            leaf_hash = hash_entry(kind, payload)
            self._store.insert_payload(kind, index, leaf_hash, payload)
            self._frontier.append(leaf_hash)
        return index

    # -- checkpoints ------------------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """Sign and store the current tree head.

        Raises:
            ConfigError: called inside ``batch()`` (a checkpoint covers committed leaves only).
            RollbackError: the clock is earlier than the latest checkpoint's time.
        """
        if self._batch_depth:
            raise ConfigError("a checkpoint cannot be made inside an open batch")
        now = self._clock.now()
        latest = self._store.latest_checkpoint()
        if latest is not None and now < latest.time:
            raise RollbackError(
                f"clock reads {now.isoformat()}, before the latest checkpoint's {latest.time.isoformat()}"
            )
        checkpoint = Checkpoint.sign(
            origin=self.origin, size=self.size, root=self.root, time=now, key=self._site_key
        )
        with self._store.transaction():
            self._check_single_writer()
            self._store.insert_checkpoint(checkpoint)
        self._state.put(self._frontier)
        return checkpoint

    def rotate_site_key(self, new_key: SigningKey, fields: Mapping[str, Any]) -> tuple[int, Checkpoint]:
        """Retire the site key for ``new_key``: log the rotation (signed by both keys, docs/crypto.md),
        sign the retirement checkpoint with the old key, then sign with ``new_key`` from now on and
        write it to ``site.pub``. ``fields`` are the audit fields (who, when, clock_sync, why, system).
        Returns the rotation's leaf index and the retirement checkpoint.

        Raises:
            ConfigError: inside ``batch()``, or ``new_key`` is the key in use.
            BackendError: ``site.pub`` cannot be written (the log already names the new key: re-run
                ``KeyStore``-side recovery, see ``aseptic.audit.rotate_site_key``).
        """
        if self._batch_depth:
            raise ConfigError("the site key cannot be rotated inside an open batch")
        if new_key.public == self._site_key.public:
            raise ConfigError(f"{new_key.key_id} is already the site key")
        entry = rotation_entry(self.origin, self._frontier.size, self._site_key, new_key, fields)
        leaf = self.append_entry(LeafKind.AUDIT, entry)
        retirement = self.checkpoint()  # the old key's last signature
        self._site_key = new_key
        replace_trust_anchor(self._data_dir / "site.pub", new_key.public)
        return leaf, retirement

    def checkpoints(self) -> tuple[Checkpoint, ...]:
        """Every stored checkpoint, oldest first."""
        return tuple(self._store.checkpoints())

    def latest_checkpoint(self) -> Checkpoint | None:
        return self._store.latest_checkpoint()

    # -- historian --------------------------------------------------------------------------------

    def query_readings(self, tag: str, start: datetime, end: datetime) -> tuple[StoredReading, ...]:
        """Readings of ``tag`` with ``start <= time < end`` (see ``aseptic.ledger.query_readings``)."""
        return query_readings(self._store, tag, start, end)


def _require_json_kind(kind: LeafKind) -> None:
    if kind not in JSON_KINDS:
        raise InputError(
            f"{kind.value} entries are not JSON entries", hint=f"JSON kinds: {sorted(JSON_KINDS)}"
        )

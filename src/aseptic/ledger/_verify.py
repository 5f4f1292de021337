"""``verify_ledger``: recompute the whole log from the stored rows and check it against its signatures.

One pass in leaf order over every table (a merge on the leaf index): each row is re-hashed and
compared with its stored leaf hash, envelopes are decoded and checked against their columns, their
readings rows and the collector keys in the log, and the tree is rebuilt from the rows themselves.
Every signed checkpoint must give the recomputed root at its size and be consistent with the one
before it. When a row and its leaf hash disagree, both versions of the tree are carried to the next
checkpoint, whose signed root tells which of the two was altered (docs/ledger.md, "Verification").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aseptic.crypto import PublicKey
from aseptic.errors import ConfigError, IntegrityError, ProofError
from aseptic.ledger._anchors import Anchor, load_anchors, report_missing_trusted
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._merge import LeafRows, Pending, Scan, merge_rows
from aseptic.ledger._open import site_keys_of
from aseptic.ledger._proof import consistency_proof, verify_consistency
from aseptic.ledger._report import Discrepancy, LedgerTampered, Report
from aseptic.ledger._sqlite import SqliteStore
from aseptic.ledger._store import open_store
from aseptic.ledger._tree import Frontier, Hash, root_of

__all__ = ["verify_ledger"]

MAX_DISCREPANCIES = 1000


def verify_ledger(
    data_dir: Path,
    site_public_key: PublicKey,
    *,
    trusted: Sequence[Checkpoint] = (),
    require_signatures: bool = False,
) -> Report:
    """Verify every row of the ledger of ``data_dir`` (``ledger.db`` or its PostgreSQL store); return
    the report of a clean ledger.

    ``trusted`` checkpoints (kept by the auditor) anchor the log too, so that truncating the log
    together with its stored checkpoints is caught. With ``require_signatures``, an envelope whose
    collector key is not in the log is a discrepancy; otherwise it is counted in the report.

    Raises:
        ConfigError: ``data_dir`` or its ``ledger.db`` does not exist.
        InputError: ``ledger.db`` is not an Aseptic ledger.
        SignatureError: a ``trusted`` checkpoint does not verify with ``site_public_key``.
        LedgerTampered: the ledger disagrees with its own hashes or signatures; ``.report`` lists where.
        IntegrityError: the database file itself is corrupt (the message gives SQLite's location).
        BackendError: SQLite failed.
    """
    if not data_dir.is_dir():
        raise ConfigError(f"data directory {data_dir} does not exist", hint="check --data-dir")
    where = str(data_dir / "ledger.db")
    try:
        store = open_store(data_dir, read_only=True)
    except UnicodeDecodeError:
        raise _not_utf8(where) from None
    if isinstance(store, SqliteStore):
        # Text that is not UTF-8 is tampering, not a crash: keep it as a string that equals nothing valid.
        store.conn.text_factory = _lenient_text
        # One read transaction: every query below sees the same snapshot (WAL), so a writer that
        # appends meanwhile (a running server's decision log) cannot make the tables disagree.
        store.conn.execute("BEGIN")
    try:
        store.check_storage()
        audit = _Audit(store.where, site_public_key, require_signatures)
        site_keys = site_keys_of(store, site_public_key)  # rotations: docs/crypto.md
        audit.anchors = load_anchors(store.scan, site_keys, trusted, audit.add)
        audit.run(store.scan)
        report_missing_trusted(audit.anchors, audit.add)
    except UnicodeDecodeError:
        raise _not_utf8(store.where) from None
    finally:
        store.close()
    if audit.report.discrepancies:
        raise LedgerTampered(audit.report)
    return audit.report


def _not_utf8(where: str) -> IntegrityError:
    return IntegrityError(
        f"{where}: the schema holds text that is not UTF-8 (the file was altered)",
        hint="the file was altered outside Aseptic; restore it from a trusted copy",
    )


def _lenient_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


class _Audit:
    """The state of one verification pass."""

    def __init__(self, ledger: str, site_key: PublicKey, require_signatures: bool) -> None:
        self.report = Report(ledger=ledger)
        self.site_key = site_key
        self.require_signatures = require_signatures
        self.anchors: list[Anchor] = []
        self.frontier = Frontier()
        self.pending: Pending | None = None
        # The previous anchor, the frontier at its size and the leaf hashes since: consistency proofs.
        self.previous: Anchor | None = None
        self.previous_frontier = Frontier()
        self.since_previous: list[Hash] = []
        self._next_anchor = 0

    def add(self, discrepancy: Discrepancy) -> int | None:
        """Record ``discrepancy``; its position in the list, or None beyond the limit."""
        if len(self.report.discrepancies) >= MAX_DISCREPANCIES:
            self.report.discrepancies_omitted += 1
            return None
        self.report.discrepancies.append(discrepancy)
        return len(self.report.discrepancies) - 1

    def run(self, scan: Scan) -> None:
        self._reach_anchors()
        for leaf in merge_rows(scan, self):
            self._push(leaf)
        if self.pending is not None:
            self._resolve(None)
        for anchor in self.anchors[self._next_anchor :]:
            self.add(
                Discrepancy(
                    anchor.table,
                    anchor.row,
                    "size",
                    "signed a log longer than the one stored (truncated?)",
                    expected=f"{anchor.checkpoint.size} leaves",
                    found=f"{self.frontier.size} leaves",
                )
            )
        self.report.size = self.frontier.size
        self.report.root = self.frontier.root.hex()

    def _push(self, leaf: LeafRows) -> None:
        recomputed = leaf.recomputed if leaf.recomputed is not None else leaf.stored
        stored = leaf.stored if leaf.stored is not None else recomputed
        if recomputed is None or stored is None:
            recomputed = stored = Hash(bytes(32))  # nothing to hash: keep later leaves at their index
        if recomputed != stored and self.pending is None:
            self.pending = Pending(leaf, self.add(leaf.mismatch()), self.frontier.copy())
        elif recomputed != stored:
            self.add(leaf.mismatch())
        self.frontier.append(recomputed)
        self.since_previous.append(recomputed)
        if self.pending is not None:
            self.pending.frontier.append(stored)
        self._reach_anchors()

    def _reach_anchors(self) -> None:
        while self._next_anchor < len(self.anchors):
            anchor = self.anchors[self._next_anchor]
            if anchor.checkpoint.size != self.frontier.size:
                return
            self._next_anchor += 1
            self._check_anchor(anchor)

    def _check_anchor(self, anchor: Anchor) -> None:
        signed = anchor.checkpoint
        self.report.checkpoints += 1
        explained = self.pending is not None
        if self.pending is not None:
            self._resolve(anchor)
        root = self.frontier.root
        if root != signed.root and not explained:
            self.add(
                Discrepancy(
                    anchor.table,
                    anchor.row,
                    "root",
                    f"signed root is not the root recomputed from the rows at size {signed.size}"
                    " (a row and its leaf hash were both altered, or leaves inserted or deleted before it)",
                    expected=signed.root.hex(),
                    found=root.hex(),
                )
            )
        elif root == signed.root and self.previous is not None and not explained:
            self._check_consistency(anchor)
        if root == signed.root:
            self.previous = anchor
            self.previous_frontier = self.frontier.copy()
            self.since_previous = []

    def _check_consistency(self, anchor: Anchor) -> None:
        assert self.previous is not None  # noqa: S101 - only called with a previous anchor
        before, after = self.previous.checkpoint, anchor.checkpoint
        known = self.previous_frontier.subtree_lookup()
        since = self.since_previous

        def subtree_root(start: int, end: int) -> Hash:
            if end <= before.size:
                return known(start, end)
            return root_of(since[start - before.size : end - before.size])

        try:
            proof = consistency_proof(before.size, after.size, subtree_root)
            verify_consistency(before.size, after.size, proof, before.root, after.root)
        except ProofError as exc:
            self.add(
                Discrepancy(
                    anchor.table, anchor.row, "root", f"not consistent with {self.previous.row}: {exc}"
                )
            )
        self.report.consistency_proofs += 1

    def _resolve(self, anchor: Anchor | None) -> None:
        """Decide, from a signed root, whether the row or the stored leaf hash of ``pending`` was altered."""
        pending = self.pending
        assert pending is not None  # noqa: S101 - only called while a mismatch is pending
        self.pending = None
        signed = None if anchor is None else anchor.checkpoint.root
        if signed is not None and signed == pending.frontier.root and signed != self.frontier.root:
            self.frontier = pending.frontier  # the stored leaf hashes are the logged ones
            verdict = pending.leaf.row_altered(f"checkpoint {anchor.row}" if anchor else "")
        elif signed is not None and signed == self.frontier.root:
            verdict = pending.leaf.hash_altered(f"checkpoint {anchor.row}" if anchor else "")
        else:
            verdict = pending.leaf.unresolved(anchor is not None)
        if pending.position is not None:
            self.report.discrepancies[pending.position] = verdict

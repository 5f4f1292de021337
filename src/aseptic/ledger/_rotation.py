"""Site key rotation in the log: which key signs the checkpoints of which span of the tree.

Rotating the site key appends one ``audit`` leaf, a record change of ``key:site`` that names the
old and the new key in full and carries two signatures over the same statement (below): the
retiring key's (it hands over) and the successor's (it accepts). The old key signs checkpoints up
to and including the size that covers that leaf (its retirement point); from there on only the
successor may. Because each rotation is signed by both keys, trust flows either way along the
chain: an auditor holding the first ``site.pub`` and one holding the latest both verify the whole
log, and a key outside the chain is refused. Statement (UTF-8, each line ending in ``\\n``)::

    aseptic-site-key-rotation/v1
    origin: site-01
    leaf: 1234
    old: ed25519:0123456789abcdef <hex of the old public key>
    new: ed25519+ml-dsa-65:fedcba9876543210 <hex of the new public key>
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aseptic.crypto import PublicKey, SigningKey
from aseptic.errors import InputError, SignatureError
from aseptic.ledger._checkpoint import Checkpoint

__all__ = ["KEY_RECORD", "SiteKeys", "rotation_entry"]

KEY_RECORD = "key:site"
_HEADER = "aseptic-site-key-rotation/v1"


def _statement(origin: str, leaf: int, old: PublicKey, new: PublicKey) -> bytes:
    return (
        f"{_HEADER}\norigin: {origin}\nleaf: {leaf}\n"
        f"old: {old.key_id} {old.raw.hex()}\nnew: {new.key_id} {new.raw.hex()}\n"
    ).encode()


def _encode_key(key: PublicKey) -> str:
    return f"{key.algorithm} {key.raw.hex()}"


def _decode_key(text: object, where: str) -> PublicKey:
    try:
        algorithm, raw = str(text).split()
        return PublicKey.from_raw(algorithm, bytes.fromhex(raw))
    except ValueError:
        raise InputError(f"{where}: malformed public key") from None


def rotation_entry(
    origin: str, leaf: int, old: SigningKey, new: SigningKey, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``audit`` entry retiring ``old`` for ``new`` at leaf ``leaf``; ``fields`` gives who, when,
    clock_sync, why and system (a ``record_change`` of ``key:site``, docs/audit.md)."""
    statement = _statement(origin, leaf, old.public, new.public)
    return {
        **fields,
        "entry": "record_change",
        "record": KEY_RECORD,
        "change": "modify",
        "old": old.key_id,
        "new": new.key_id,
        "key_event": "retired",
        "origin": origin,
        "old_public_key": _encode_key(old.public),
        "new_public_key": _encode_key(new.public),
        "retiring_signature": base64.b64encode(old.sign(statement)).decode("ascii"),
        "successor_signature": base64.b64encode(new.sign(statement)).decode("ascii"),
    }


@dataclass(frozen=True)
class _Span:
    key: PublicKey
    until_size: int | None  # None: the current key


class SiteKeys:
    """The chain of site keys of one log and the span each may sign, anchored at a trusted key."""

    def __init__(self, spans: tuple[_Span, ...]) -> None:
        self._spans = spans

    @property
    def current(self) -> PublicKey:
        return self._spans[-1].key

    @property
    def keys(self) -> tuple[PublicKey, ...]:
        return tuple(span.key for span in self._spans)

    @classmethod
    def single(cls, key: PublicKey) -> SiteKeys:
        return cls((_Span(key, None),))

    @classmethod
    def from_entries(cls, anchor: PublicKey, entries: Iterable[tuple[int, bytes]]) -> SiteKeys:
        """The chain from the logged rotations (``(leaf, payload)`` of ``audit`` leaves, log order).

        Raises:
            SignatureError: a rotation is not signed by both its keys, the chain is broken, or
                ``anchor`` is not one of its keys.
        """
        spans: list[_Span] = []
        for leaf, payload in entries:
            fields = json.loads(payload)
            if fields.get("record") != KEY_RECORD or fields.get("key_event") != "retired":
                continue
            where = f"audit leaf {leaf} (site key rotation)"
            old = _decode_key(fields.get("old_public_key"), where)
            new = _decode_key(fields.get("new_public_key"), where)
            if spans and spans[-1].key != old:
                raise SignatureError(
                    f"{where}: retires {old.key_id}, but the key in force is {spans[-1].key.key_id}"
                )
            cls._check(fields, leaf, old, new, where)
            if spans:
                spans[-1] = _Span(old, leaf + 1)
            else:
                spans.append(_Span(old, leaf + 1))
            spans.append(_Span(new, None))
        if not spans:
            spans = [_Span(anchor, None)]
        if anchor not in [span.key for span in spans]:
            raise SignatureError(
                f"trusted site key {anchor.key_id} is not in the log's key chain "
                f"({', '.join(span.key.key_id for span in spans)})",
                hint="verify with site.pub of this site (any of its keys, old or current)",
            )
        return cls(tuple(spans))

    @staticmethod
    def _check(fields: Mapping[str, Any], leaf: int, old: PublicKey, new: PublicKey, where: str) -> None:
        origin = fields.get("origin")
        statement = _statement(str(origin), leaf, old, new)
        for name, key in (("retiring_signature", old), ("successor_signature", new)):
            try:
                signature = base64.b64decode(str(fields.get(name, "")), validate=True)
            except binascii.Error:
                raise SignatureError(f"{where}: {name} is not base64") from None
            key.verify(signature, statement, what=f"{where} {name}")

    @classmethod
    def from_conn(cls, conn: sqlite3.Connection, anchor: PublicKey) -> SiteKeys:
        """The chain from the ``audit`` table of an open ``ledger.db``."""
        rows = conn.execute(
            "SELECT leaf, payload FROM audit WHERE instr(payload, ?) > 0 ORDER BY leaf",
            (f'"record":"{KEY_RECORD}"',),
        ).fetchall()
        return cls.from_entries(anchor, ((int(leaf), bytes(payload)) for leaf, payload in rows))

    def key_for(self, checkpoint: Checkpoint) -> PublicKey:
        """The key that may sign ``checkpoint``.

        Raises:
            SignatureError: signed by a key not in the chain, or by a retired key past its
                retirement point.
        """
        for span in self._spans:
            if span.key.key_id != checkpoint.key_id:
                continue
            if span.until_size is not None and checkpoint.size > span.until_size:
                raise SignatureError(
                    f"checkpoint of {checkpoint.origin!r} at size {checkpoint.size} is signed by "
                    f"{checkpoint.key_id}, retired at size {span.until_size}",
                    hint="a retired key signs nothing new",
                )
            return span.key
        raise SignatureError(
            f"checkpoint of {checkpoint.origin!r} at size {checkpoint.size} is signed by "
            f"{checkpoint.key_id}, not a site key of this log ({', '.join(k.key_id for k in self.keys)})",
            hint="verify with the site's public key (site.pub) given to you out of band",
        )

    def key_for_leaf(self, key_id: str, leaf: int) -> PublicKey:
        """The key ``key_id`` if it was in force when leaf ``leaf`` was appended (an e-signature
        logged at ``leaf``): a retired key signs nothing logged after its retirement point.

        Raises:
            SignatureError: not a key of this chain, or retired before ``leaf``.
        """
        for span in self._spans:
            if span.key.key_id != key_id:
                continue
            if span.until_size is not None and leaf >= span.until_size:
                raise SignatureError(
                    f"leaf {leaf} is signed by {key_id}, retired at size {span.until_size}",
                    hint="a retired key signs nothing new",
                )
            return span.key
        raise SignatureError(f"leaf {leaf} is signed by {key_id}, not a site key of this log")

    def verify_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Check ``checkpoint``'s signature with the key of its span (see ``key_for``)."""
        checkpoint.verify(self.key_for(checkpoint))

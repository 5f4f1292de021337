"""Helpers for the ledger tests: real signed envelopes, quarantine events, a site to open."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import Ledger
from aseptic.telemetry import Envelope, Quality, QuarantineEvent, Reading

START = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = "fermenter-01"
TAGS = ("temperature_k", "ph", "dissolved_o2_mg_per_l", "agitator_rpm", "volume_l")


def make_envelopes(key: SigningKey, count: int, *, per: int = 5, first_sequence: int = 1) -> list[Envelope]:
    """``count`` chained envelopes of ``per`` readings each, from ``SOURCE``."""
    out: list[Envelope] = []
    previous = bytes(32)
    for sequence in range(first_sequence, first_sequence + count):
        readings = [
            Reading(
                TAGS[i % len(TAGS)],
                START + timedelta(seconds=60 * sequence + i),
                300.0 + sequence + i / 8,
                Quality.GOOD if i % 4 else Quality.UNCERTAIN,
                f"{SOURCE}/AT-202",
            )
            for i in range(per)
        ]
        envelope = Envelope.seal(
            source=SOURCE, sequence=sequence, previous_digest=previous, readings=readings, key=key
        )
        previous = envelope.digest
        out.append(envelope)
    return out


def quarantine_event(message: str = "bad magic") -> QuarantineEvent:
    return QuarantineEvent(
        time=START,
        reason="malformed",
        error_class="InputError",
        message=message,
        size=4,
        sha256="ab" * 32,
        stored_size=4,
        stored_sha256="ab" * 32,
        file=None,
        source=None,
        sequence=None,
        digest=None,
        authenticated=False,
    )


class Rows(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Db(Protocol):
    """Raw SQL on a ledger's tables, written in SQLite's dialect, for tampering in tests."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...


_ZEROBLOB = re.compile(r"zeroblob\((\d+)\)")
_TO_BLOB = re.compile(r"CAST\((.*) AS BLOB\)")


def to_postgres(sql: str) -> str:
    """The few SQLite-isms of the tamper statements, in PostgreSQL's dialect."""
    sql = _ZEROBLOB.sub(lambda m: f"decode(repeat('00', {m.group(1)}), 'hex')", sql)
    sql = sql.replace("CAST(payload AS TEXT)", "convert_from(payload, 'UTF8')")
    sql = _TO_BLOB.sub(lambda m: f"convert_to({m.group(1)}, 'UTF8')", sql)
    return sql.replace("?", "%s")


class _PgDb:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return self._conn.execute(to_postgres(sql), tuple(params))  # type: ignore[no-any-return]


@dataclass
class Site:
    data_dir: Path
    site_key: SigningKey
    collector_key: SigningKey
    clock: SimClock
    store: str | None = None  # a postgresql:// URL, or None for ledger.db

    def open(self) -> Ledger:
        return Ledger.open(self.data_dir, site_key=self.site_key, clock=self.clock, store=self.store)

    @contextmanager
    def db(self) -> Iterator[Db]:
        """A connection to the ledger's tables, committed at the end, with no constraint checks on
        PostgreSQL (an attacker with the database's credentials can disable them, so tests do)."""
        if self.store is None:
            conn = sqlite3.connect(self.data_dir / "ledger.db")
            try:
                with conn:
                    yield conn
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(self.store) as pg:
            pg.execute("SET session_replication_role = replica")
            yield _PgDb(pg)

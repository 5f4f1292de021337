"""Signing a record: authenticate the signer (with lockout), make the manifestation, log it.

``RecordSigner`` is where 11.200 meets 11.70: the identity store checks the signer's components
(both at a session's first signing, the password later; failures counted, a burst locks the
identity and raises a Finding), then the manifestation is signed by the site key and logged as a
``signature`` leaf. ``ledger_sink`` lets an identity store write straight into a ledger (audit
entries to ``audit`` leaves, a lockout Finding to a ``finding`` leaf).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aseptic.audit._clock_sync import SyncProbe, read_host_clock_sync
from aseptic.audit._entry import check_record_id
from aseptic.audit._esign import MEANINGS, ElectronicSignature, sign_record
from aseptic.audit._trail import AuditLog
from aseptic.clock import Clock
from aseptic.crypto import SigningKey
from aseptic.errors import ConfigError, InputError
from aseptic.ledger import LeafKind
from aseptic.trust import IdentityStore

__all__ = ["RecordSigner", "ledger_sink"]


def ledger_sink(log: AuditLog) -> Callable[[Mapping[str, Any]], object]:
    """An identity store's audit sink over ``log``: Findings as ``finding`` leaves, the rest ``audit``."""

    def append(entry: Mapping[str, Any]) -> object:
        kind = LeafKind.FINDING if entry.get("entry") == "finding" else LeafKind.AUDIT
        return log.append_entry(kind, entry)

    return append


class RecordSigner:
    """Electronic signatures of the users of one identity store, logged in one site's log."""

    def __init__(
        self,
        identities: IdentityStore,
        log: AuditLog,
        *,
        site_key: SigningKey,
        clock: Clock,
        system: str,
        clock_sync: SyncProbe = read_host_clock_sync,
    ) -> None:
        self._identities = identities
        self._log = log
        self._site_key = site_key
        self._clock = clock
        self.system = system
        self._clock_sync = clock_sync

    def clock_sync(self) -> str:
        """The host clock's sync state now (the probe this signer was given)."""
        return self._clock_sync()

    def sign(
        self,
        *,
        record: str,
        content: bytes | Mapping[str, Any],
        signer: str,
        meaning: str,
        password: str,
        totp_code: str | None = None,
        session_id: str | None = None,
    ) -> tuple[ElectronicSignature, int]:
        """Sign ``content`` (the record ``record``) as ``signer`` with ``meaning``; return the
        signature and its leaf index.

        Raises:
            ConfigError: the signer has no printed name on file.
            AccessDenied: a component is wrong or missing, or the signer is disabled or locked.
            InputError: unknown meaning or malformed record id.
        """
        check_record_id(record)  # bad input is refused before a component is checked or counted
        if meaning not in MEANINGS:
            raise InputError(f"signature meaning {meaning!r} is not one of {', '.join(MEANINGS)}")
        printed_name = self._identities.full_name(signer)
        if printed_name is None:
            raise ConfigError(
                f"{signer!r} has no full name on file; a signature must show the printed name (11.50)",
                hint=f"an administrator runs `aseptic record signer {signer} --full-name '...'`",
            )
        now = self._clock.now()
        _, factors = self._identities.authenticate_for_signature(
            signer, password, totp_code, session_id=session_id, now=now
        )
        signature = sign_record(
            record=record,
            content=content,
            signer=signer,
            printed_name=printed_name,
            meaning=meaning,
            when=now,
            clock_sync=self._clock_sync(),
            factors=factors,
            session=session_id,
            system=self.system,
            site_key=self._site_key,
        )
        leaf = self._log.append_entry(LeafKind.SIGNATURE, signature.to_payload())
        return signature, leaf

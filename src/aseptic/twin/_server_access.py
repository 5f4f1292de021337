"""Who may talk to the twin's OPC UA server, and who may write setpoints (asyncua glue).

Three gates, all fail closed:

1. ``CreateSession``: the client's application certificate must be valid for its application URI
   and be in the trust list (``DATA_DIR/pki/trusted``). A refusal is logged with the subject and
   thumbprint, counted, and the certificate is kept in ``DATA_DIR/pki/rejected`` for review.
2. ``ActivateSession``: the only identity token accepted is an X.509 certificate (no anonymous, no
   password), and it must be in the trust list too; the session's user is its subject CN.
3. ``Write``: a setpoint node is written only by the configured writer identity; anyone else gets
   ``BadUserAccessDenied``. Accepted writes go to ``Plant.write_setpoint`` first.

asyncua always lets a client open a SecurityPolicy#None channel (for endpoint discovery). The
server adds a None policy whose permission rules deny every service past discovery, so a client on
an unencrypted channel can list the endpoints and nothing else, whatever identity it shows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import ua as _ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from aseptic.clock import Clock
from aseptic.crypto import (
    ApplicationRole,
    TrustList,
    add_to_trust_list,
    subject_common_name,
    thumbprint,
    verify_application_certificate,
)
from aseptic.errors import AsepticError, InputError, SignatureError

# asyncua re-exports its protocol types implicitly; they stay Any inside this adapter.
ua: Any = _ua

log = logging.getLogger("aseptic.twin.opcua")


@dataclass
class AccessStats:
    """Counters an operator watches (and the tests check)."""

    refused_certificates: int = 0
    denied_writes: int = 0
    accepted_writes: int = 0


class TrustGate:
    """Checks client certificates against a trust list that is re-read when its directory changes."""

    def __init__(self, trusted_dir: Path, rejected_dir: Path, clock: Clock, stats: AccessStats) -> None:
        self._trusted_dir = trusted_dir
        self._rejected_dir = rejected_dir
        self._clock = clock
        self._stats = stats
        self._stamp: tuple[tuple[str, int], ...] = ()
        self._trust = self._load()

    def _load(self) -> TrustList:
        trust = TrustList.load(self._trusted_dir)
        self._stamp = self._dir_stamp()
        return trust

    def _dir_stamp(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in self._trusted_dir.iterdir()))

    def _current(self) -> TrustList:
        # `aseptic twin trust` may add a certificate while the server runs: pick it up.
        try:
            if self._dir_stamp() != self._stamp:
                self._trust = self._load()
        except (AsepticError, OSError) as exc:
            log.error(
                "trust list %s could not be reloaded, keeping the previous one: %s", self._trusted_dir, exc
            )
        return self._trust

    def check(
        self, der: bytes, application_uri: str | None, stage: str
    ) -> tuple[x509.Certificate | None, int]:
        """``(certificate, Good)`` if it is valid and trusted; else log, count, keep it and return
        ``(certificate or None, the OPC UA status code of the refusal)``."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            self._stats.refused_certificates += 1
            log.warning("refused client at %s: the certificate is not valid DER", stage)
            return None, ua.StatusCodes.BadCertificateInvalid
        try:
            verify_application_certificate(
                cert, now=self._clock.now(), application_uri=application_uri, role=ApplicationRole.CLIENT
            )
        except SignatureError as exc:
            return cert, self._refuse(cert, stage, exc, ua.StatusCodes.BadCertificateInvalid)
        try:
            self._current().verify_trusted(cert)
        except SignatureError as exc:
            return cert, self._refuse(cert, stage, exc, ua.StatusCodes.BadCertificateUntrusted)
        return cert, ua.StatusCodes.Good

    def _refuse(self, cert: x509.Certificate, stage: str, reason: SignatureError, code: int) -> int:
        self._stats.refused_certificates += 1
        log.warning(
            "refused client certificate at %s: subject=%r thumbprint=%s: %s",
            stage,
            cert.subject.rfc4514_string(),
            thumbprint(cert),
            reason,
        )
        try:
            add_to_trust_list(self._rejected_dir, cert)
        except AsepticError as write_error:
            log.error("%s", write_error)
        return code

    async def validate_session_certificate(
        self, cert: x509.Certificate, app: ua.ApplicationDescription
    ) -> None:
        """asyncua ``certificate_validator``: called on CreateSession with the client's certificate."""
        _, code = self.check(cert.public_bytes(Encoding.DER), app.ApplicationUri, "CreateSession")
        if code != ua.StatusCodes.Good:
            raise ServiceError(code)


class CertificateUserManager(UserManager):
    """asyncua user manager: the session's user is the trusted X.509 identity token's subject CN."""

    def __init__(self, gate: TrustGate) -> None:
        self._gate = gate

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is not None or not isinstance(certificate, bytes):
            log.warning("refused session: no X.509 identity token (anonymous or password login)")
            return None
        cert, code = self._gate.check(certificate, None, "ActivateSession")
        if cert is None or code != ua.StatusCodes.Good:
            return None
        return User(role=UserRole.User, name=subject_common_name(cert))


class DenyAllRuleset:
    """Permission rules for the implicit SecurityPolicy#None channel: nothing past discovery."""

    def check_validity(self, user: Any, action_type_id: Any, body: Any) -> bool:
        return False


class SetpointGuard:
    """Wraps asyncua's attribute service so setpoint writes obey the writer identity.

    Reads and writes to other nodes go to the wrapped service unchanged (which refuses writes to
    read-only nodes). Server-internal writes do not pass through here.
    """

    def __init__(
        self,
        inner: Any,
        setpoints: Mapping[ua.NodeId, str],
        writer: str,
        apply: Callable[[str, float], Awaitable[None]],
        stats: AccessStats,
    ) -> None:
        self._inner = inner
        self._setpoints = setpoints
        self._writer = writer
        self._apply = apply
        self._stats = stats

    def read(self, params: Any) -> Any:
        return self._inner.read(params)

    async def write(self, params: Any, user: User = User(role=UserRole.Admin)) -> list[ua.StatusCode]:  # noqa: B008 - asyncua's signature
        results: list[ua.StatusCode] = []
        for item in params.NodesToWrite:
            tag = self._setpoints.get(item.NodeId)
            if tag is None or user.role is UserRole.Admin:
                single = ua.WriteParameters(NodesToWrite=[item])
                results.extend(await self._inner.write(single, user=user))
                continue
            results.append(await self._write_setpoint(tag, item, user))
        return results

    async def _write_setpoint(self, tag: str, item: Any, user: User) -> ua.StatusCode:
        if user.name != self._writer or item.AttributeId != ua.AttributeIds.Value:
            self._stats.denied_writes += 1
            log.warning("denied write to setpoint %s by %r (only %r may write)", tag, user.name, self._writer)
            return ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)
        variant = item.Value.Value if item.Value is not None else None
        value = variant.Value if variant is not None else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch)
        try:
            await self._apply(tag, float(value))
        except InputError as exc:
            log.warning("rejected write to setpoint %s by %r: %s", tag, user.name, exc)
            return ua.StatusCode(ua.StatusCodes.BadOutOfRange)
        self._stats.accepted_writes += 1
        log.info("setpoint %s = %r written by %r", tag, value, user.name)
        return ua.StatusCode()

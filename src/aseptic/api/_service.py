"""What the API does, without HTTP: authenticate, decide, log, read. Handlers call one method each.

``ApiService.open`` opens the data directory once per process: the site and session keys, the one
``Ledger`` writer (owned by the ``DecisionLog``'s writer thread; every decision and audit entry goes
through it), the identity store and the active policy set. Reads (ledger status, historian) use
read-only connections opened per request, never a second writer.

The identity store is a SQLite connection, which stays in the thread that opened it: every identity
call runs on one dedicated thread. That also serialises logins, so password guessing costs one
argon2 verification at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509

from aseptic.api._active_batch import read_ledger_batch
from aseptic.api._errors import Denied, Unauthenticated, UnknownResource
from aseptic.api._plant import access_watch, plant_gateway
from aseptic.api._records import RecordReads
from aseptic.api._tls import load_site_ca_certificate
from aseptic.clock import Clock, format_rfc3339
from aseptic.config import Settings
from aseptic.crypto import SITE_KEY, KeyStore, SigningKey
from aseptic.errors import AccessDenied, BackendError, ConfigError, InputError, IntegrityError
from aseptic.gateway import ChangeResult, TwinLink, UnknownTarget, WriteDenied, WriteGateway
from aseptic.ledger import Ledger, has_ledger
from aseptic.service import (
    DeviceAttestation,
    ExpectedFirmware,
    load_client_anchors,
    load_expected_firmware,
)
from aseptic.trust import (
    AccessRequest,
    AccessWatch,
    ClientIdentity,
    Decision,
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    GrantStore,
    IdentityStore,
    PolicyDecisionPoint,
    Principal,
    RequestContext,
    batch_entity,
    load_active_policy_set,
    lockout_policy,
    plant_entities,
    verify_client_certificate,
)
from aseptic.twin import TAGS_BY_NAME

__all__ = [
    "CONDUIT",
    "ApiService",
    "Caller",
    "LoginResult",
]

T = TypeVar("T")

CONDUIT = "http-api"
_GENERIC_LOGIN_FAILURE = "authentication failed"


@dataclass(frozen=True)
class LoginResult:
    token: str
    expires: datetime


@dataclass(frozen=True)
class Caller:
    """Who is asking (a user by bearer token, or a device/service by its certificate) and from which
    endpoint (the mutual-TLS client certificate, if one was presented)."""

    principal: Principal
    endpoint: ClientIdentity | None


class ApiService(RecordReads):
    """The open state of one data directory for the HTTP API. Close it when the server stops."""

    def __init__(
        self,
        data_dir: Path,
        settings: Settings,
        clock: Clock,
        session_key: SigningKey,
        log: DecisionLog,
        pep: EnforcementPoint,
        identity_thread: ThreadPoolExecutor,
        identities: IdentityStore,
        gateway: WriteGateway | None = None,
        ca_certificate: x509.Certificate | None = None,
        grants: GrantStore | None = None,
        attestation: DeviceAttestation | None = None,
        watch: AccessWatch | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.clock = clock
        self._session_key = session_key
        self.log = log
        self.pep = pep
        self._identity_thread = identity_thread
        self._identities = identities
        self.gateway = gateway
        self.ca_certificate = ca_certificate
        # The current CA, then retired ones whose client certificates are still honoured (ADR 0380).
        self.client_anchors = (ca_certificate, *load_client_anchors(data_dir)) if ca_certificate else ()
        self.grants = grants  # elevation grants and break-glass (see _grant_routes)
        # Device firmware posture ([attestation] devices); None: no device is attested (fail closed).
        self.attestation = attestation
        self.watch = watch  # inline access analytics, fed by the decision log (None: [access] off)
        self._lock = threading.Lock()
        self.failed_logins = 0
        self.refused_tokens = 0
        self._closed = False

    @classmethod
    def open(cls, data_dir: Path, settings: Settings, clock: Clock) -> ApiService:
        """Open an initialised data directory (see ``aseptic init``).

        Raises:
            ConfigError: no ledger in ``data_dir``.
            SignatureError, IntegrityError: the ledger or the site's policy set fails verification.
            BackendError: a store cannot be opened.
        """
        if not has_ledger(data_dir):
            raise ConfigError(
                f"{data_dir} holds no ledger: not initialised", hint=f"aseptic init --data-dir {data_dir}"
            )
        keys = KeyStore.open(data_dir)
        site_key = keys.load_or_create(SITE_KEY)
        session_key = keys.load_or_create("session")
        bundle, _ = load_active_policy_set(data_dir, site_key.public)
        origin = settings.site.id
        expected: tuple[ExpectedFirmware, ...] = ()
        if settings.attestation.devices:
            if settings.gateway.endpoint is None:
                raise ConfigError(
                    "[attestation] devices are read over the plant's OPC UA server: no [gateway] endpoint",
                    hint="set [gateway] endpoint (or --twin-endpoint), or remove [attestation] devices",
                )
            retired = [key.key_id for key in keys.retired(SITE_KEY)]
            expected = load_expected_firmware(
                settings.attestation, data_dir, [site_key.public], retired=retired
            )

        watch = access_watch(data_dir, settings, clock)

        def open_ledger() -> Ledger:
            ledger = Ledger.open(data_dir, site_key=site_key, clock=clock, origin=origin, create=False)
            if watch is not None:
                try:
                    watch.catch_up(ledger)  # on the log's writer thread, before anything is appended
                except BaseException:
                    ledger.close()
                    raise
            return ledger

        log = DecisionLog(open_ledger, observer=watch, append_process=settings.api.decision_log_process)
        if watch is not None:
            watch.attach(log.record_finding)  # queued with the decisions, never waited for
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="identity-store")
        try:
            identities = thread.submit(
                IdentityStore.open, data_dir, audit=log, lockout=lockout_policy(settings)
            ).result()
        except BaseException:
            thread.shutdown()
            log.close()
            raise
        try:
            grants = GrantStore.open(data_dir, audit=log, findings=log.log_finding)
        except BaseException:
            thread.submit(identities.close).result()
            thread.shutdown()
            log.close()
            raise
        pep = EnforcementPoint(PolicyDecisionPoint(bundle, plant_entities()), log, grants)
        gateway, attestation = plant_gateway(data_dir, settings, clock, pep, log, expected)
        try:
            ca = load_site_ca_certificate(data_dir)
        except ConfigError:
            if gateway is not None and isinstance(gateway.plant, TwinLink):
                gateway.plant.close()
            grants.close()
            thread.submit(identities.close).result()
            thread.shutdown()
            log.close()
            raise
        return cls(
            data_dir,
            settings,
            clock,
            session_key,
            log,
            pep,
            thread,
            identities,
            gateway,
            ca,
            grants,
            attestation,
            watch,
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the identity store, then flush and close the decision log (and its ledger); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self.gateway is not None and isinstance(self.gateway.plant, TwinLink):
                self.gateway.plant.close()
            self._identity_thread.submit(self._identities.close).result()
            self._identity_thread.shutdown()
            if self.grants is not None:
                self.grants.close()
        finally:
            self.log.close()
            if self.watch is not None:
                self.watch.save_mark()

    def _on_identity_thread(self, call: Callable[[], T]) -> T:
        try:
            future = self._identity_thread.submit(call)
        except RuntimeError:  # shut down: the app's lifespan has ended
            raise BackendError("the API service is closed", hint="restart `aseptic serve`") from None
        return future.result()

    # -- authentication ---------------------------------------------------------------------------

    def login(self, username: str, password: str, totp_code: str) -> LoginResult:
        """Check a password and TOTP code and issue a session token (the attempt is logged).

        Raises:
            Unauthenticated: any failure, with one generic message (the reason is in the ledger).
        """
        now = self.clock.now()
        lifetime_s = self.settings.api.token_lifetime_s

        def attempt() -> str:
            return self._identities.login(
                username, password, totp_code, key=self._session_key, now=now, lifetime_s=lifetime_s
            )

        try:
            token = self._on_identity_thread(attempt)
        except AccessDenied:
            with self._lock:
                self.failed_logins += 1
            raise Unauthenticated(
                _GENERIC_LOGIN_FAILURE, hint="check the user name, password and code"
            ) from None
        return LoginResult(token, now + timedelta(seconds=lifetime_s))

    def authenticate(self, token: str | None, route: str) -> Principal:
        """The principal a bearer token stands for, now (revocation and disable apply at once).

        A refused token is logged as an ``authentication`` entry (queued, not waited for).

        Raises:
            Unauthenticated: no token, or a malformed, forged, expired or revoked one, or a disabled
                subject.
        """
        now = self.clock.now()
        if not token:
            raise Unauthenticated("this route needs a bearer token", hint="POST /api/login for one")
        try:
            return self._on_identity_thread(
                lambda: self._identities.verify_session(token, public_key=self._session_key.public, now=now)
            )
        except (InputError, IntegrityError, AccessDenied) as exc:  # malformed, forged, expired, revoked...
            # A BackendError (the store failed) is not the caller's fault: it goes on as a 503.
            with self._lock:
                self.refused_tokens += 1
            self.log.record(
                {
                    "entry": "authentication",
                    "subject": None,
                    "result": "token_refused",
                    "reason": f"{type(exc).__name__}: {exc.message}",
                    "route": route,
                    "time": format_rfc3339(now),
                }
            )
            raise Unauthenticated(f"bearer token refused: {exc.message}") from None

    def authenticate_caller(self, token: str | None, route: str, client_pem: bytes | None) -> Caller:
        """The caller of a request: by bearer token (a user), else by client certificate (a device
        or service). A presented certificate is checked on every request, token or not: the site
        CA, validity, usage, then the identity store (enrolled, not revoked, principal active).

        Raises:
            Unauthenticated: no credentials, or a refused token or certificate (logged).
        """
        endpoint = self._verify_endpoint(client_pem, route) if client_pem else None
        if token or endpoint is None:
            return Caller(self.authenticate(token, route), endpoint)
        assert endpoint is not None  # noqa: S101 - the branch above
        principal = self._on_identity_thread(lambda: self._identities.get(endpoint.name))
        return Caller(principal, endpoint)

    def _verify_endpoint(self, pem: bytes, route: str) -> ClientIdentity:
        now = self.clock.now()
        try:
            if self.ca_certificate is None:
                raise AccessDenied("this site has no CA: client certificates cannot be checked")
            identity = verify_client_certificate(pem, self.client_anchors, now)
            self._on_identity_thread(
                lambda: self._identities.verify_client(identity.kind, identity.name, identity.fingerprint)
            )
        except (InputError, IntegrityError, AccessDenied) as exc:
            with self._lock:
                self.refused_tokens += 1
            self.log.record(
                {
                    "entry": "authentication",
                    "subject": None,
                    "result": "certificate_refused",
                    "reason": f"{type(exc).__name__}: {exc.message}",
                    "route": route,
                    "time": format_rfc3339(now),
                }
            )
            raise Unauthenticated(f"client certificate refused: {exc.message}") from None
        return identity

    # -- the write gateway ------------------------------------------------------------------------

    def _gateway(self) -> WriteGateway:
        if self.gateway is None:
            raise ConfigError(
                "the write gateway is not configured: this server writes nothing to the plant",
                hint="aseptic serve --twin-endpoint opc.tcp://HOST:PORT/aseptic/ (or [gateway] endpoint)",
            )
        return self.gateway

    def write_setpoint(self, caller: Caller, tag: str, value: float, reason: str) -> ChangeResult:
        """A setpoint write through the gateway (``write_setpoint`` on ``Tag::tag``, logged).

        Raises:
            InputError: no reason, a bad value, or one the plant refused.
            UnknownResource: no such tag (the deny is logged).
            Denied: the policies deny it (logged).
            IntegrityError: the plant reads back another value.
            ConfigError, BackendError: no gateway, or the plant or log is unreachable (503).
        """
        try:
            return self._gateway().write_setpoint(
                caller.principal, tag, value, reason, endpoint=caller.endpoint
            )
        except WriteDenied as exc:
            raise Denied(exc.decision) from None
        except UnknownTarget as exc:
            raise UnknownResource(exc.message, hint=exc.hint) from None

    def change_recipe(
        self, caller: Caller, unit: str, parameter: str, value: float, reason: str
    ) -> ChangeResult:
        """A recipe parameter change through the gateway (``change_recipe`` on ``Unit::unit``, logged).

        Raises:
            As ``write_setpoint``.
        """
        try:
            return self._gateway().change_recipe(
                caller.principal, unit, parameter, value, reason, endpoint=caller.endpoint
            )
        except WriteDenied as exc:
            raise Denied(exc.decision) from None
        except UnknownTarget as exc:
            raise UnknownResource(exc.message, hint=exc.hint) from None

    def active_batch(self, caller: Caller) -> dict[str, Any]:
        """The unit's batch (``read_record`` on ``Batch::<id>``, logged), with its ``source``.

        From the plant when the write gateway is configured and the plant answers (``source``
        ``plant``); otherwise from the ledger (``source`` ``ledger``): the most recent batch with a
        lineage START and no COMPLETE, its last logged phase, and ``plant`` saying why the plant
        was not asked (``not configured``) or did not answer (``unreachable``: down, or the
        gateway's writer identity unusable; the writes' 503 says which).

        Raises:
            Denied: the policies deny it.
            BackendError: the decision log failed (503).
        """
        plant = "not configured"
        if self.gateway is not None:
            try:
                batch = self.gateway.active_batch()
            except (BackendError, ConfigError):  # down, or no usable writer identity to reach it
                plant = "unreachable"
            else:
                self._authorize_batch(caller, batch.batch_id, batch.batch_state)
                return {**batch.to_json(), "source": "plant", "plant": "connected"}
        ledger = read_ledger_batch(self.data_dir)
        self._authorize_batch(caller, ledger.batch_id, ledger.batch_state)
        return {**ledger.to_json(), "source": "ledger", "plant": plant}

    def _authorize_batch(self, caller: Caller, batch_id: str, batch_state: str) -> None:
        batch_id = batch_id or "none"
        context = RequestContext(
            batch_state=batch_state,  # type: ignore[arg-type]  # a schema state by construction
            firmware_attested=False,
            source_zone=self.settings.api.source_zone,
            conduit=CONDUIT,
            time=self.clock.now(),
        )
        principal = caller.principal
        request = AccessRequest(
            EntityRef(principal.kind, principal.name), "read_record", EntityRef("Batch", batch_id), context
        )
        # The plant hierarchy of [gateway] (the gateway's own unit and area when it is configured).
        entity = batch_entity(batch_id, self.settings.gateway.unit, self.settings.gateway.area)
        decision = self.pep.authorize(request, extra=[principal.to_entity(), entity])
        if not decision.allowed:
            raise Denied(decision)

    # -- authorised reads -------------------------------------------------------------------------

    def _batch_state(self) -> str:
        """The active batch's state as the plant reports it, read where the write gateway reads it.

        Without a gateway this server is connected to no plant and knows no batch: ``none``. With
        one, an unreachable plant is a ``BackendError`` (503): the state the policies read is never
        guessed.
        """
        if self.gateway is None:
            return "none"
        return self.gateway.active_batch().batch_state

    def _context(self, principal: Principal | None = None, *, plant: bool = True) -> RequestContext:
        """The API's request context. ``plant=False`` for decisions about grants (approve, revoke,
        review): they are not about the plant and must not fail when it is unreachable - revoking a
        grant has to work then too - so they are decided with ``batch_state`` ``none``.

        Posture: a Device's own firmware attestation (docs/provenance.md); users and services have
        no posture signal on these routes: not attested."""
        attested = (
            principal is not None
            and principal.kind == "Device"
            and self.attestation is not None
            and self.attestation.principal_attested(principal.name)
        )
        return RequestContext(
            batch_state=self._batch_state() if plant else "none",  # type: ignore[arg-type]  # a schema state
            firmware_attested=attested,
            source_zone=self.settings.api.source_zone,
            conduit=CONDUIT,
            time=self.clock.now(),
        )

    def _require(
        self, principal: Principal, action: str, resource: EntityRef, extra: tuple[dict[str, Any], ...] = ()
    ) -> Decision:
        request = AccessRequest(
            EntityRef(principal.kind, principal.name), action, resource, self._context(principal)
        )
        decision = self.pep.authorize(request, extra=[principal.to_entity(), *extra])
        if not decision.allowed:
            if resource.type == "Tag" and resource.id not in TAGS_BY_NAME:
                raise UnknownResource(
                    f"unknown tag {resource.id!r}", hint="GET /openapi.json; see docs/api.md"
                )
            raise Denied(decision)
        return decision

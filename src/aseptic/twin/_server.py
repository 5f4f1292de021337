"""The twin behind a secured OPC UA server (an adapter: the plant model itself does no I/O).

Address space (ISA-95 equipment hierarchy), namespace ``urn:aseptic:twin``::

    Objects/<site>/<area>/<unit>/<tag>                  AnalogItemType, Double, with the properties
                                                        EngineeringUnits, EURange and Device
    Objects/<site>/<area>/<unit>/BatchState/            BatchId, Phase, State, BatchStart, SampleTimeH
    Objects/<site>/<area>/<unit>/Recipe/<setpoint tag>  the control recipe's setpoint parameters
    Objects/<site>/<area>/<unit>/Devices/<id>/          FirmwareVersion, FirmwareDigest

Time: values carry SOURCE timestamps in simulated time. A SimClock starts at a fixed epoch
(``SIM_EPOCH``, 2026-01-01T00:00:00Z, unless ``ServerOptions.epoch`` says otherwise) when the
server starts; batch n starts where batch n-1 ended, and a sample's time is its batch's start plus
the plant's batch time. Server timestamps are wall-clock time. An assay without a new laboratory
report (NaN) is not published: the node keeps the last report and its timestamp. Any other NaN is
published as ``BadSensorFailure``.

Batch state (ISA-88): a batch is ``idle`` until its first sample, ``running`` until its HARVEST
sample, then ``complete``. Recipe parameters are the setpoints a batch starts with: a change is
applied to every later batch, and to the current one if it has not started (``idle``).
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from asyncua import ua as _ua
from asyncua.crypto.security_policies import SecurityPolicyFactory, SecurityPolicyNone
from asyncua.server.server import Server

from aseptic.clock import Clock, SimClock
from aseptic.crypto import ApplicationIdentity, ApplicationRole, PkiDirectory, add_to_trust_list
from aseptic.errors import ConfigError, InputError
from aseptic.twin._server_access import (
    AccessStats,
    CertificateUserManager,
    DenyAllRuleset,
    SetpointGuard,
    TrustGate,
)
from aseptic.twin._server_space import NAMESPACE_URI, AddressSpace, build_address_space
from aseptic.twin.tags import TAGS, TAGS_BY_NAME, TagKind

# asyncua re-exports its protocol types implicitly; they stay Any inside this adapter.
ua: Any = _ua
_PolicyFactory: Any = SecurityPolicyFactory

__all__ = [
    "GATEWAY_IDENTITY",
    "NAMESPACE_URI",
    "SIM_EPOCH",
    "PlantLike",
    "ServerOptions",
    "ServerStats",
    "TwinServer",
    "bootstrap_pki",
]

SIM_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
GATEWAY_IDENTITY = "aseptic-gateway"  # the collector's client identity, created and trusted on first run


class PhaseLike(Protocol):
    @property
    def name(self) -> str: ...


class PlantLike(Protocol):
    """What the server needs from ``aseptic.twin.Plant``."""

    @property
    def sample_time_h(self) -> float: ...
    @property
    def time_h(self) -> float: ...
    @property
    def phase(self) -> PhaseLike: ...
    @property
    def finished(self) -> bool: ...
    def step(self) -> Mapping[str, float]: ...
    def write_setpoint(self, tag: str, value: float) -> None: ...
    def firmware(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 4840  # 0: any free port (tests); see TwinServer.endpoint_url
    site: str = "site-01"
    area: str = "fermentation"
    unit: str = "fermenter-01"
    writer_identity: str = GATEWAY_IDENTITY
    epoch: datetime = SIM_EPOCH
    max_queue_size: int = 1_000_000  # per monitored item, server side
    # Benchmarks only: also offer a SecurityPolicy#None endpoint. Never set by the product.
    insecure_none_endpoint: bool = False


@dataclass
class ServerStats(AccessStats):
    samples: int = 0
    values: int = 0  # tag values published (a NaN assay is not one)
    batches: int = 0


def bootstrap_pki(data_dir: Path, *, site: str, now: datetime) -> PkiDirectory:
    """Create what is missing in ``DATA_DIR/pki`` on first run; load nothing else.

    The server identity (``own/server``) is created and added to ``trusted-servers/`` (so a
    collector using the same data directory trusts it); the collector's client identity
    (``own/client-aseptic-gateway``) is created and added to ``trusted/``. Existing files are never
    replaced, and a certificate removed from a trust list is not put back.

    Raises:
        BackendError: the files cannot be written.
    """
    pki = PkiDirectory.of(data_dir)
    hosts = ("localhost", "127.0.0.1", socket.gethostname())
    for directory in (pki.own, pki.trusted, pki.rejected, pki.trusted_servers):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (pki.own / "server.der").exists():
        server = ApplicationIdentity.create(
            pki.own,
            "server",
            common_name=f"aseptic-twin-{site}",
            application_uri=f"urn:aseptic:twin:{site}",
            role=ApplicationRole.SERVER,
            now=now,
            hosts=hosts,
        )
        add_to_trust_list(pki.trusted_servers, server.certificate)
    name = f"client-{GATEWAY_IDENTITY}"
    if not (pki.own / f"{name}.der").exists():
        gateway = ApplicationIdentity.create(
            pki.own,
            name,
            common_name=GATEWAY_IDENTITY,
            application_uri=f"urn:aseptic:client:{GATEWAY_IDENTITY}",
            role=ApplicationRole.CLIENT,
            now=now,
            hosts=hosts,
        )
        add_to_trust_list(pki.trusted, gateway.certificate)
    return pki


class TwinServer:
    """The plant's OPC UA server. ``async with TwinServer(...) as server:`` starts and stops it."""

    def __init__(
        self, plants: Callable[[int], PlantLike], data_dir: Path, options: ServerOptions, clock: Clock
    ) -> None:
        self._plants = plants
        self._data_dir = data_dir
        self.options = options
        self._clock = clock
        self.stats = ServerStats()
        self._sim = SimClock(options.epoch)
        self._plant = plants(0)
        self._batch_start = options.epoch
        self._server: Any = None
        self._space: AddressSpace | None = None
        self._published: dict[str, str] = {}
        self._recipe: dict[str, float] = {}  # setpoint tag -> value a new batch starts with
        self._batch_samples = 0

    @property
    def plant(self) -> PlantLike:
        return self._plant

    @property
    def sim_time(self) -> datetime:
        """The simulated time of the last published sample (the epoch before the first)."""
        return self._sim.now()

    @property
    def endpoint_url(self) -> str:
        port = self._server.bserver.port if self._server is not None else self.options.port
        return f"opc.tcp://{self.options.host}:{port}/aseptic/"

    async def start(self) -> None:
        """Load certificates and trust list, build the address space, listen.

        Raises:
            ConfigError: a corrupt certificate, key or trust-list file (named), or the address
                cannot be listened on.
            BackendError: the PKI files cannot be written on first run.
        """
        opts = self.options
        pki = bootstrap_pki(self._data_dir, site=opts.site, now=self._clock.now())
        identity = ApplicationIdentity.load(pki.own, "server")
        gate = TrustGate(pki.trusted, pki.rejected, self._clock, self.stats)
        server: Any = Server(user_manager=CertificateUserManager(gate))
        await server.init()
        # The wall-clock ServerStatus.CurrentTime ticker would only delay stop() by up to 1 s.
        server.disable_clock(True)
        server.set_endpoint(f"opc.tcp://{opts.host}:{opts.port}/aseptic/")
        server.set_server_name(f"Aseptic twin {opts.site}/{opts.unit}")
        server.product_uri = "urn:aseptic"
        await server.set_application_uri(identity.application_uri)
        await server.load_certificate(identity.certificate_der)
        await server.load_private_key(identity.private_key_der, format="der")
        policies = [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
        if opts.insecure_none_endpoint:
            policies.insert(0, ua.SecurityPolicyType.NoSecurity)
        else:
            # Discovery-only None channel: see _server_access (asyncua always accepts one).
            none_policy = _PolicyFactory(
                SecurityPolicyNone, ua.MessageSecurityMode.None_, permission_ruleset=DenyAllRuleset()
            )
            server._policies.append(none_policy)  # asyncua's policy list, read once by start()
        server.set_security_policy(policies)
        server.set_identity_tokens([ua.X509IdentityToken])
        server.set_certificate_validator(gate.validate_session_certificate)
        server.iserver.max_monitored_item_queue_size = opts.max_queue_size
        self._space = await build_address_space(server, opts.site, opts.area, opts.unit)
        server.iserver.attribute_service = SetpointGuard(
            server.iserver.attribute_service,
            {**self._space.setpoints, **self._space.recipe},
            opts.writer_identity,
            self._write_setpoint,
            self.stats,
        )
        await self._space.write_batch_state(self._batch_id(), self._plant, self._batch_start)
        await self._publish_recipe()
        await self._space.write_firmware(self._plant.firmware())  # known before the first sample
        try:
            await server.start()
        except OSError as exc:  # asyncua has already stopped its internal server
            raise ConfigError(
                f"cannot listen on {opts.host}:{opts.port}: {exc.strerror or exc}",
                hint="choose another --port (1-65535) or stop the process using it",
            ) from None
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    async def __aenter__(self) -> TwinServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _batch_id(self) -> str:
        return f"{self.options.site}-{self.options.unit}-{self.stats.batches + 1:04d}"

    @property
    def batch_state(self) -> str:
        """``idle``, ``running`` or ``complete`` (ISA-88) for the current batch."""
        if self._plant.finished:
            return "complete"
        return "running" if self._batch_samples else "idle"

    async def _publish_recipe(self) -> None:
        space = self._space
        if space is None:
            raise RuntimeError("start() the server first")
        setpoints = self._recipe_defaults()
        for tag, value in {**setpoints, **self._recipe}.items():
            await space.write_recipe(tag, value)

    def _recipe_defaults(self) -> dict[str, float]:
        # Plant.setpoints() (a method); a test double may hold a plain mapping, or nothing.
        read = getattr(self._plant, "setpoints", None)
        values = read() if callable(read) else read
        return {str(k): float(v) for k, v in values.items()} if isinstance(values, Mapping) else {}

    async def _write_setpoint(self, key: str, value: float) -> None:
        if self._space is None:
            raise RuntimeError("start() the server first")
        if key.startswith("recipe."):
            await self._write_recipe(key.removeprefix("recipe."), value)
            return
        self._plant.write_setpoint(key, value)  # raises InputError: refused before the node changes
        await self._space.write_value(key, value, self._sim.now(), self._clock.now())

    async def _write_recipe(self, tag: str, value: float) -> None:
        assert self._space is not None  # noqa: S101 - checked by the caller
        spec = TAGS_BY_NAME[tag]
        if not (math.isfinite(value) and spec.low <= value <= spec.high):
            raise InputError(f"recipe {tag} = {value!r} is outside {spec.low:g}..{spec.high:g} {spec.unit}")
        if self.batch_state == "idle":  # not started: this batch runs with the new recipe too
            self._plant.write_setpoint(tag, value)
            await self._space.write_value(tag, value, self._sim.now(), self._clock.now())
        self._recipe[tag] = value
        await self._space.write_recipe(tag, value)

    async def publish_sample(self) -> None:
        """Step the plant once and publish every tag (a new batch starts when one finishes)."""
        space = self._space
        if space is None:
            raise RuntimeError("start() the server first")
        if self._plant.finished:
            self.stats.batches += 1
            self._plant = self._plants(self.stats.batches)
            self._batch_start = self._sim.now()
            self._batch_samples = 0
            for tag, value in self._recipe.items():
                self._plant.write_setpoint(tag, value)
            await space.write_batch_state(self._batch_id(), self._plant, self._batch_start)
        values = self._plant.step()
        self._batch_samples += 1
        when = self._batch_start + timedelta(hours=self._plant.time_h)
        self._sim.set(when)
        now = self._clock.now()
        for spec in TAGS:
            value = values.get(spec.name, math.nan)
            if math.isnan(value) and spec.kind is TagKind.ASSAY:
                continue
            await space.write_value(spec.name, value, when, now)
            self.stats.values += 1
        await space.write_phase(self._plant.phase.name)
        await space.write_state(self.batch_state)
        await space.write_firmware(self._plant.firmware())
        self.stats.samples += 1

    async def run(self, speed: float, stop: asyncio.Event, *, max_samples: int | None = None) -> None:
        """Publish samples paced so that ``speed`` simulated seconds pass per wall second.

        Returns when ``stop`` is set or ``max_samples`` were published. A slow host publishes late
        samples back to back (never skips one), yielding to the event loop between samples.
        """
        loop = asyncio.get_running_loop()
        due = loop.time()
        published = 0
        while not stop.is_set() and (max_samples is None or published < max_samples):
            period_s = self._plant.sample_time_h * 3600.0 / speed
            delay = due - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass
                continue
            await self.publish_sample()
            published += 1
            due += period_s
            await asyncio.sleep(0)

"""Helpers for the OPC UA integration tests: a deterministic fake plant, identities, raw clients."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from aseptic.clock import WallClock
from aseptic.crypto import ApplicationIdentity, ApplicationRole, PkiDirectory, add_to_trust_list
from aseptic.errors import InputError
from aseptic.twin import TAGS, ServerOptions, TagKind, TwinServer, tag_spec

SAMPLE_TIME_H = 0.2
ASSAY_EVERY = 5  # the fake lab reports every 5th sample


class FakePhase(Enum):
    CHARGE = 0
    FED_BATCH = 1


class FakePlant:
    """Values are a pure function of (seed, sample, tag): tests can predict every one."""

    def __init__(self, seed: int = 0, *, samples: int = 10_000, skip_after: int | None = None) -> None:
        self.seed = seed
        self.samples = samples
        self.skip_after = skip_after  # time jumps one extra sample after this one (a lost sample)
        self.n = 0
        self.time_h = 0.0
        self.setpoints = {t.name: round((t.low + t.high) / 2, 3) for t in TAGS if t.kind is TagKind.SETPOINT}
        self.history: list[dict[str, float]] = []
        self.firmware_digests = {"TIC-101": "ab" * 32, "AT-202": "cd" * 32}

    @property
    def sample_time_h(self) -> float:
        return SAMPLE_TIME_H

    @property
    def phase(self) -> FakePhase:
        return FakePhase.CHARGE if self.n < 3 else FakePhase.FED_BATCH

    @property
    def finished(self) -> bool:
        return self.n >= self.samples

    def step(self) -> dict[str, float]:
        self.n += 1
        jump = 2 if self.skip_after is not None and self.n == self.skip_after + 1 else 1
        self.time_h += SAMPLE_TIME_H * jump
        values = {}
        for i, spec in enumerate(TAGS):
            if spec.kind is TagKind.ASSAY:
                values[spec.name] = (
                    float(self.seed * 1000 + self.n) if self.n % ASSAY_EVERY == 0 else math.nan
                )
            elif spec.kind is TagKind.SETPOINT:
                values[spec.name] = self.setpoints[spec.name]
            elif spec.name == "batch_time_h":
                values[spec.name] = self.time_h
            elif spec.name == "phase_index":
                values[spec.name] = float(self.phase.value)
            else:
                values[spec.name] = spec.low + ((self.seed + self.n * 7 + i * 13) % 97) / 97 * (
                    spec.high - spec.low
                )
        self.history.append(values)
        return values

    def write_setpoint(self, tag: str, value: float) -> None:
        spec = tag_spec(tag)
        if spec.kind is not TagKind.SETPOINT or not spec.low <= value <= spec.high:
            raise InputError(f"setpoint {tag} = {value} refused")
        self.setpoints[tag] = value

    def firmware(self) -> dict[str, str]:
        return dict(self.firmware_digests)


def make_server(data_dir: Path, plant: Any = None, **options: Any) -> TwinServer:
    """A server on 127.0.0.1, any free port; ``plant`` (default FakePlant()) is batch 0."""
    first = plant if plant is not None else FakePlant()
    plants = [first]

    def factory(index: int) -> Any:
        if index >= len(plants):
            plants.append(FakePlant(seed=index))
        return plants[index]

    return TwinServer(factory, data_dir, ServerOptions(port=0, **options), WallClock())


def new_client_identity(
    data_dir: Path, name: str, *, trusted: bool, server_data_dir: Path
) -> ApplicationIdentity:
    """A client identity ``own/client-<name>`` in ``data_dir``, trusting the server of ``server_data_dir``."""
    pki = PkiDirectory.of(data_dir)
    identity = ApplicationIdentity.create(
        pki.own,
        f"client-{name}",
        common_name=name,
        application_uri=f"urn:aseptic:client:{name}",
        role=ApplicationRole.CLIENT,
        now=datetime.now(UTC),
    )
    server_cert = ApplicationIdentity.load(PkiDirectory.of(server_data_dir).own, "server").certificate
    add_to_trust_list(pki.trusted_servers, server_cert)
    if trusted:
        add_to_trust_list(PkiDirectory.of(server_data_dir).trusted, identity.certificate)
    return identity


@asynccontextmanager
async def raw_client(url: str, identity: ApplicationIdentity, server_data_dir: Path) -> AsyncIterator[Client]:
    """A plain asyncua client, SignAndEncrypt, authenticating with ``identity`` (like a user's own)."""
    client = Client(url, timeout=10)
    client.application_uri = identity.application_uri
    server_der = str(PkiDirectory.of(server_data_dir).own / "server.der")
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(identity.cert_path),
        str(identity.key_path),
        server_certificate=server_der,
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    client.user_certificate = identity.certificate
    client.user_private_key = identity.private_key
    await client.connect()
    try:
        yield client
    finally:
        await client.disconnect()


def gateway(server_data_dir: Path) -> ApplicationIdentity:
    return ApplicationIdentity.load(PkiDirectory.of(server_data_dir).own, "client-aseptic-gateway")


def tag_node(client: Client, idx: int, tag: str) -> Any:
    return client.get_node(ua.NodeId(f"site-01.fermentation.fermenter-01.{tag}", idx))

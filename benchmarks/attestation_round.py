"""Device attestation as `aseptic serve` runs it: the cost of a round and the time to flag a swap.

    .venv/bin/python -m benchmarks.attestation_round [--rounds 200] [--swaps 10] [--interval-s 1] [--json]

Everything on 127.0.0.1 in this process: the twin's OPC UA server (Basic256Sha256 SignAndEncrypt,
X.509 identities, the real ``Plant`` with its 11 devices) on its own event loop thread, and the write
gateway's ``TwinLink`` (its own thread and session) that serve reads the digests through. Measured:

- one attestation read: ``TwinLink.read_firmware_digests`` (browse the Devices folder, one Read of
  every digest), and one full ``DeviceAttestation.attest_once`` (the read plus the registry, no
  Finding); baselines in the same run: ``OpcUaFirmwareReader`` on an equally secured session (two
  reads per device, the reader `attest_periodically` uses) and ``TwinLink.read_batch`` (one Read of
  three nodes: one OPC UA round trip, the floor);
- time to flag a swapped image while ``DeviceAttestation.run`` attests every ``--interval-s``: from
  ``Plant.set_firmware`` + publish to the device's posture failing (the Finding is durable by then).

``--data DIR`` keeps the data directories there (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from asyncua import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua import MessageSecurityMode

from aseptic.clock import WallClock
from aseptic.crypto import ApplicationIdentity, PkiDirectory
from aseptic.gateway import TwinLink
from aseptic.provenance import OpcUaFirmwareReader
from aseptic.service import DeviceAttestation, ExpectedFirmware
from aseptic.twin import DEVICES, Plant, ServerOptions, TwinServer, factory_image

UNIT = "site-01.fermentation.fermenter-01"
CONTROLLERS = {"pid_controller", "flow_controller", "drive", "batch_controller"}


def _provision(twin_dir: Path, data_dir: Path) -> None:
    source, target = PkiDirectory.of(twin_dir), PkiDirectory.of(data_dir)
    for directory in (target.own, target.trusted_servers):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for suffix in (".der", ".pem"):
        shutil.copy2(source.own / f"client-aseptic-gateway{suffix}", target.own)
    shutil.copy2(source.own / "server.der", target.trusted_servers)


def _time(name: str, count: int, call: Callable[[], object]) -> dict[str, Any]:
    latencies: list[int] = []
    cpu = time.process_time()
    for _ in range(count):
        began = time.perf_counter_ns()
        call()
        latencies.append(time.perf_counter_ns() - began)
    ordered = sorted(latencies)
    return {
        "what": name,
        "rounds": count,
        "p50_ms": round(statistics.median(ordered) / 1e6, 2),
        "p99_ms": round(ordered[int(0.99 * (count - 1))] / 1e6, 2),
        "cpu_ms_per_round": round(1000 * (time.process_time() - cpu) / count, 2),
    }


def _expected() -> list[ExpectedFirmware]:
    return [
        ExpectedFirmware(
            d.id,
            d.id.lower(),
            hashlib.sha256(factory_image(d.id, d.firmware_version)).hexdigest(),
            d.firmware_version,
            "",
            d.kind in CONTROLLERS,
        )
        for d in DEVICES
    ]


class _Findings:
    def __init__(self) -> None:
        self.entries: list[Mapping[str, Any]] = []

    def __call__(self, payload: Mapping[str, Any]) -> object:
        self.entries.append(payload)
        return len(self.entries)


def run(root: Path, rounds: int, swaps: int, interval_s: float) -> dict[str, Any]:
    data_dir, twin_dir = root / "data", root / "twin"
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop_thread.start()
    plant = Plant(0)
    twin = TwinServer(lambda i: plant if i == 0 else Plant(i), twin_dir, ServerOptions(port=0), WallClock())

    def on_twin(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(60)

    on_twin(twin.start())
    on_twin(twin.publish_sample())
    _provision(twin_dir, data_dir)
    rows: list[dict[str, Any]] = []
    swap_s: list[float] = []
    link = TwinLink(
        twin.endpoint_url,
        data_dir=data_dir,
        writer="client-aseptic-gateway",
        unit_path=UNIT,
        clock=WallClock(),
    )
    try:
        with link:
            assert len(link.read_firmware_digests()) == len(DEVICES)
            rows.append(
                _time("TwinLink.read_firmware_digests (browse + 1 Read)", rounds, link.read_firmware_digests)
            )
            findings = _Findings()
            attestation = DeviceAttestation(
                _expected(), link.read_firmware_digests, WallClock(), findings, interval_s=interval_s,
                max_report_age_s=max(60.0, 3 * interval_s),
            )  # fmt: skip
            rows.append(
                _time("DeviceAttestation.attest_once (read + registry)", rounds, attestation.attest_once)
            )
            rows.append(_time("baseline: TwinLink.read_batch (1 Read, 3 nodes)", rounds, link.read_batch))
            rows.append(_baseline_reader(twin, data_dir, loop, rounds))
            assert findings.entries == [], findings.entries
            swap_s = _swaps(plant, twin, on_twin, attestation, swaps, findings)
    finally:
        on_twin(twin.stop())
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(10)
    return {
        "devices": len(DEVICES),
        "rows": rows,
        "swap": {
            "interval_s": interval_s,
            "swaps": len(swap_s),
            "flagged": len(swap_s),
            "median_s": round(statistics.median(swap_s), 2),
            "max_s": round(max(swap_s), 2),
        },
    }


def _baseline_reader(
    twin: TwinServer, data_dir: Path, loop: asyncio.AbstractEventLoop, rounds: int
) -> dict[str, Any]:
    """``OpcUaFirmwareReader`` over its own SignAndEncrypt session (run on a second event loop)."""
    pki = PkiDirectory.of(data_dir)
    me = ApplicationIdentity.load(pki.own, "client-aseptic-gateway")
    server_der = (pki.trusted_servers / "server.der").read_bytes()
    result: dict[str, Any] = {}

    async def measure() -> None:
        client = Client(twin.endpoint_url, timeout=10)
        client.application_uri = me.application_uri
        await client.set_security(
            SecurityPolicyBasic256Sha256, me.certificate_der, me.private_key_der,
            server_certificate=server_der, mode=MessageSecurityMode.SignAndEncrypt,
        )  # fmt: skip
        client.user_certificate = me.certificate
        client.user_private_key = me.private_key
        async with client:
            reader = OpcUaFirmwareReader(client, unit=UNIT)
            latencies: list[int] = []
            cpu = time.process_time()
            for _ in range(rounds):
                began = time.perf_counter_ns()
                await reader.read_firmware_digests()
                latencies.append(time.perf_counter_ns() - began)
            ordered = sorted(latencies)
            result.update(
                {
                    "what": "baseline: OpcUaFirmwareReader (2 Reads per device)",
                    "rounds": rounds,
                    "p50_ms": round(statistics.median(ordered) / 1e6, 2),
                    "p99_ms": round(ordered[int(0.99 * (rounds - 1))] / 1e6, 2),
                    "cpu_ms_per_round": round(1000 * (time.process_time() - cpu) / rounds, 2),
                }
            )

    asyncio.run(measure())
    return result


def _swaps(
    plant: Plant, twin: TwinServer, on_twin: Callable[[Any], Any], attestation: DeviceAttestation,
    swaps: int, findings: _Findings,
) -> list[float]:  # fmt: skip
    """Swap a device's image ``swaps`` times while ``run`` attests; seconds until its posture fails."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(attestation.run(stop),), daemon=True)
    thread.start()
    seconds = []
    try:
        for i in range(swaps):
            device = DEVICES[i % len(DEVICES)]
            good = factory_image(device.id, device.firmware_version)
            time.sleep(attestation.interval_s * ((i * 0.37) % 1.0))  # swap at varying points of a round
            began = time.perf_counter()
            plant.set_firmware(device.id, good + f"implant {i}".encode())
            on_twin(twin.publish_sample())
            while attestation.posture(device.id).attested:
                time.sleep(0.005)
            seconds.append(time.perf_counter() - began)
            plant.set_firmware(device.id, good)
            on_twin(twin.publish_sample())
            while not attestation.posture(device.id).attested:
                time.sleep(0.005)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
    assert len([f for f in findings.entries]) == swaps
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--interval-s", type=float, default=1.0)
    parser.add_argument("--data", type=Path, default=None, help="keep the data directories here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=True)
        result = run(args.data, args.rounds, args.swaps, args.interval_s)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(Path(tmp), args.rounds, args.swaps, args.interval_s)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['devices']} devices, SignAndEncrypt on 127.0.0.1")
    print(f"{'what':<54}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms':>9}")
    for row in result["rows"]:
        print(f"{row['what']:<54}{row['p50_ms']:>9}{row['p99_ms']:>9}{row['cpu_ms_per_round']:>9}")
    swap = result["swap"]
    print(
        f"swap -> posture failed, attesting every {swap['interval_s']:g} s: {swap['flagged']}/{swap['swaps']}"
        f" flagged, median {swap['median_s']} s, max {swap['max_s']} s"
    )


if __name__ == "__main__":
    main()

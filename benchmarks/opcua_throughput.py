"""Tag updates per second delivered to one subscribing client: SignAndEncrypt vs SecurityPolicy None.

    .venv/bin/python -m benchmarks.opcua_throughput                     # the recorded run
    .venv/bin/python -m benchmarks.opcua_throughput --samples 600 --json

The twin's server runs in a child process (``--serve``, the real ``Plant`` by default) with a
SecurityPolicy#None endpoint added for the baseline only (``ServerOptions.insecure_none_endpoint``;
the product never offers one). For each round this process connects an ``OpcUaSource``, subscribes
to every tag, tells the server to publish ``--samples`` samples back to back, and consumes
``Reading`` objects until it has every value the server reports publishing. A round fails unless
the count is exact and the source saw no sequence gap, overflow or per-tag sample gap. Rate =
values / (wall time from "go" to the last value). Rounds alternate secure / none.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aseptic.clock import WallClock
from aseptic.config import OpcUaSettings
from aseptic.telemetry import OpcUaSource
from aseptic.twin import TAGS, Plant, ServerOptions, TagKind, TwinServer

GOAL_PER_S = 10_000


class SyntheticPlant:
    """Cheap deterministic values (``--plant synthetic``): isolates the OPC UA path."""

    sample_time_h = 0.2

    class _Phase:
        name = "FED_BATCH"

    def __init__(self, seed: int) -> None:
        self.n, self.seed, self.time_h, self.phase = 0, seed, 0.0, self._Phase()

    @property
    def finished(self) -> bool:
        return self.n >= 1_000_000

    def step(self) -> dict[str, float]:
        self.n += 1
        self.time_h = self.n * self.sample_time_h
        return {
            t.name: (t.low + (self.n + i) % 50 / 50 * (t.high - t.low))
            for i, t in enumerate(TAGS)
            if t.kind is not TagKind.ASSAY
        }

    def write_setpoint(self, tag: str, value: float) -> None:
        raise NotImplementedError

    def firmware(self) -> dict[str, str]:
        return {}


async def serve(data_dir: Path, plant_kind: str) -> None:
    """Child process: serve; on each stdin line N publish N samples, then print the value count."""

    def plants(index: int) -> Any:
        return Plant(index) if plant_kind == "twin" else SyntheticPlant(index)

    options = ServerOptions(port=0, insecure_none_endpoint=True)
    async with TwinServer(plants, data_dir, options, WallClock()) as server:
        print(server.endpoint_url, flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            before, cpu = server.stats.values, time.process_time()
            await server.run(1e12, asyncio.Event(), max_samples=int(line))
            print(server.stats.values - before, time.process_time() - cpu, flush=True)


async def round_trip(
    url: str, data_dir: Path, server: subprocess.Popen[str], samples: int, secure: bool, interval_ms: float
) -> dict[str, Any]:
    settings = OpcUaSettings(queue_size=1_000_000)
    source = OpcUaSource(
        url,
        data_dir=data_dir,
        settings=settings,
        publishing_interval_ms=interval_ms,
        insecure_no_security=not secure,
    )
    async with source:
        assert server.stdin is not None and server.stdout is not None
        received, last_at, expected_box = 0, 0.0, []

        async def consume() -> None:
            nonlocal received, last_at
            async for batch in source.batches():
                received += len(batch)
                last_at = time.perf_counter()
                if expected_box and received >= expected_box[0]:
                    return

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(3 * interval_ms / 1000 + 0.2)  # the subscription's snapshot of current values
        base = received
        start, cpu = time.perf_counter(), time.process_time()
        server.stdin.write(f"{samples}\n")
        server.stdin.flush()
        published, server_cpu_s = (await asyncio.to_thread(server.stdout.readline)).split()
        expected = int(published)
        expected_box.append(base + expected)
        if received < base + expected:
            await asyncio.wait_for(consumer, timeout=600)
        elapsed, client_cpu_s = last_at - start, time.process_time() - cpu
        await asyncio.sleep(0.5)  # a duplicated value would arrive now and break the count
        consumer.cancel()
        stats = source.stats
        received = stats.readings - base
    ok = received == expected and stats.sequence_gaps == stats.overflows == stats.sample_gaps == 0
    return {
        "security": "Basic256Sha256 SignAndEncrypt" if secure else "None (baseline)",
        "values": received,
        "expected": expected,
        "seconds": round(elapsed, 3),
        "values_per_s": round(received / elapsed),
        "no_loss": ok,
        "server_values_per_cpu_s": round(received / float(server_cpu_s)),
        "client_values_per_cpu_s": round(received / client_cpu_s),
        "sequence_gaps": stats.sequence_gaps,
        "overflows": stats.overflows,
        "sample_gaps": stats.sample_gaps,
        "messages": stats.messages,
    }


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        profile = ["--profile", str(args.profile)] if args.profile else []
        child = [
            sys.executable,
            "-m",
            "benchmarks.opcua_throughput",
            "--serve",
            str(data_dir),
            "--plant",
            args.plant,
            *profile,
        ]
        server = subprocess.Popen(child, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            await round_trip(url, data_dir, server, 50, True, args.publishing_interval_ms)  # warm-up
            results = []
            for _ in range(args.rounds):
                for secure in (True, False):
                    results.append(
                        await round_trip(
                            url, data_dir, server, args.samples, secure, args.publishing_interval_ms
                        )
                    )
            return results
        finally:
            if server.stdin is not None:
                server.stdin.close()  # the child's command loop ends; it stops its server
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=1000, help="samples per round (x 28-33 values)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--publishing-interval-ms", type=float, default=100.0)
    parser.add_argument("--plant", choices=("twin", "synthetic"), default="twin")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--profile", type=Path, help="write cProfile stats of server and client to PATH.{server,client}"
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    if profile is not None:
        profile.enable()
    try:
        if args.serve is not None:
            asyncio.run(serve(args.serve, args.plant))
            return
        results = asyncio.run(bench(args))
    finally:
        if profile is not None:
            profile.disable()
            profile.dump_stats(f"{args.profile}.{'server' if args.serve else 'client'}")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'security':32} {'values':>8} {'s':>7} {'values/s':>9} {'srv/CPU-s':>10} {'cli/CPU-s':>10}  no loss"
    )
    for r in results:
        print(
            f"{r['security']:32} {r['values']:>8} {r['seconds']:>7} {r['values_per_s']:>9} "
            f"{r['server_values_per_cpu_s']:>10} {r['client_values_per_cpu_s']:>10}  {r['no_loss']}"
        )
    for label in ("Basic256Sha256 SignAndEncrypt", "None (baseline)"):
        mine = [r for r in results if r["security"] == label]
        print(
            f"median {label}: {statistics.median(r['values_per_s'] for r in mine):.0f} values/s, server "
            f"{statistics.median(r['server_values_per_cpu_s'] for r in mine):.0f} and client "
            f"{statistics.median(r['client_values_per_cpu_s'] for r in mine):.0f} values per CPU-s"
        )
    secure = statistics.median(r["values_per_s"] for r in results if r["security"].startswith("Basic"))
    met = secure >= GOAL_PER_S and all(r["no_loss"] for r in results)
    print(f"goal >= {GOAL_PER_S}/s secured with no loss: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()

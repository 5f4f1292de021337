"""``aseptic twin serve`` and ``aseptic twin trust`` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from asyncua import ua
from opcua_support import new_client_identity, raw_client, tag_node

from aseptic.crypto import PkiDirectory
from aseptic.telemetry import OpcUaSource
from aseptic.twin import TAGS

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-TWIN")]

ASEPTIC = [str(Path(sys.executable).with_name("aseptic"))]  # the installed console script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aseptic(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ASEPTIC, *args], capture_output=True, text=True, timeout=timeout_s, check=False)


async def start_serving(data_dir: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        *ASEPTIC,
        "twin",
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(data_dir),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    url = (await asyncio.wait_for(process.stdout.readline(), 120)).decode().strip()
    assert url.startswith("opc.tcp://127.0.0.1:"), url
    return process, url


async def test_twin_serve_serves_the_plant_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    process, url = await start_serving(tmp_path, "--speed", "36000", "--seed", "3")
    try:
        async with OpcUaSource(url, data_dir=tmp_path, publishing_interval_ms=50) as source:
            seen: set[str] = set()
            async for reading in source:
                seen.add(reading.tag)
                assert reading.source.startswith("site-01/fermenter-01/")
                if seen >= {t.name for t in TAGS if not t.name.startswith("assay_")}:
                    break
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    assert b"stopped after" in err and b"Traceback" not in err


async def test_twin_serve_refuses_an_untrusted_client_until_twin_trust(tmp_path: Path) -> None:
    process, url = await start_serving(tmp_path, "--speed", "3600")
    try:
        mine = new_client_identity(tmp_path / "mine", "my-scada", trusted=False, server_data_dir=tmp_path)
        with pytest.raises(ua.UaStatusCodeError):
            async with raw_client(url, mine, tmp_path):
                pass
        trusted = aseptic("twin", "trust", str(mine.cert_path), "--data-dir", str(tmp_path))
        assert trusted.returncode == 0, trusted.stderr
        assert "CN=my-scada" in trusted.stdout
        async with raw_client(url, mine, tmp_path) as client:
            assert isinstance(await tag_node(client, 2, "batch_time_h").read_value(), float)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    assert b"refused client certificate" in err and b"CN=my-scada" in err


def test_twin_serve_with_corrupt_trust_list_exits_2_naming_the_file(tmp_path: Path) -> None:
    PkiDirectory.of(tmp_path).trusted.mkdir(parents=True)
    corrupt = PkiDirectory.of(tmp_path).trusted / "vendor.pem"
    corrupt.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    result = aseptic("twin", "serve", "--port", str(free_port()), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "vendor.pem" in result.stderr.replace("\n", "") and "Traceback" not in result.stderr


def test_twin_serve_on_a_busy_port_exits_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = aseptic("twin", "serve", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "cannot listen" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_twin_serve_with_a_bad_port_exits_2(tmp_path: Path, port: str) -> None:
    result = aseptic("twin", "serve", "--port", port, "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "pki").exists()


def test_twin_trust_refuses_a_file_that_is_not_a_certificate(tmp_path: Path) -> None:
    bogus = tmp_path / "client.der"
    bogus.write_bytes(os.urandom(300))
    result = aseptic("twin", "trust", str(bogus), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "client.der" in result.stderr and "Traceback" not in result.stderr

"""Artifacts, keys and specs shared by the provenance tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from aseptic.crypto import SigningKey


@pytest.fixture(scope="session")
def site_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.json"
    path.write_bytes(b'{"weights":[0.25,0.5,0.75]}')
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "detector"
    (directory / "weights").mkdir(parents=True)
    (directory / "config.json").write_bytes(b'{"alpha":0.01}')
    (directory / "weights" / "layer0.bin").write_bytes(bytes(range(256)) * 4)
    return directory

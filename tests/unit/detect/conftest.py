"""Fixtures: synthetic correlated fed-batch data (see detect_synthetic)."""

from __future__ import annotations

import pytest
from detect_synthetic import MakeBatch, Sample, make_batch


@pytest.fixture(scope="session")
def batch_maker() -> MakeBatch:
    return make_batch


@pytest.fixture(scope="session")
def training_batches() -> list[list[Sample]]:
    """Twelve clean training batches (seeds 0..11); tests use seeds from 1000 on."""
    return [make_batch(seed) for seed in range(12)]

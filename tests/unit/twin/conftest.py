"""Shared simulated batches (session-scoped: each costs a fraction of a CPU-second)."""

from __future__ import annotations

import pytest

from aseptic.twin import BatchResult, simulate_batches

SEED = 11


@pytest.fixture(scope="session")
def clean_batch() -> BatchResult:
    """A fault-free 280 h batch (long enough for every fault window)."""
    return simulate_batches(1, SEED, duration_h=280.0, paa_control="true")[0]


@pytest.fixture(scope="session")
def faulted() -> dict[int, BatchResult]:
    """The same batch under each fault 1-8."""
    return {
        fault: simulate_batches(1, SEED, [fault], duration_h=280.0, paa_control="true")[0]
        for fault in range(1, 9)
    }

"""Constants shared by the guard tests (seeds, batch length, start time)."""

from __future__ import annotations

from datetime import UTC, datetime

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
TRAINING_SEEDS = (1000, 1001, 1002)
TEST_SEED = 3000  # distinct from the training seeds
DURATION_H = 80.0

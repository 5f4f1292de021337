"""Wrong settings for ingest fail at start with a ConfigError naming the setting, never per message."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
from telemetry_support import SOURCE, START, FakeSink, catalogue_readings, fixed_key

from aseptic.clock import SimClock
from aseptic.config import TelemetrySettings, settings_from_mapping
from aseptic.errors import ConfigError
from aseptic.telemetry import EdgeSigner, Envelope, Ingestor, IngestVerifier, Quarantine

pytestmark = pytest.mark.requirement("ASE-CUSTODY")


def test_an_infinite_clock_skew_is_refused_when_the_verifier_is_built() -> None:
    """TOML has ``inf``: the settings file refuses it, and settings built in code without validation
    are refused by the verifier too (before, every envelope crashed the skew check)."""
    with pytest.raises(
        ConfigError, match=r"\[telemetry\]\.max_clock_skew_s: Input should be a finite number"
    ):
        settings_from_mapping({"telemetry": {"max_clock_skew_s": math.inf}})
    settings = TelemetrySettings.model_construct(max_clock_skew_s=math.inf)
    with pytest.raises(ConfigError, match=r"\[telemetry\].max_clock_skew_s is inf"):
        IngestVerifier({SOURCE: fixed_key(1).public}, clock=SimClock(START), settings=settings)


def test_a_huge_finite_clock_skew_still_verifies(tmp_path: Path) -> None:
    key, clock = fixed_key(1), SimClock(START + timedelta(days=1))
    settings = TelemetrySettings(max_clock_skew_s=1e300)
    verifier = IngestVerifier({SOURCE: key.public}, clock=clock, settings=settings)
    quarantine = Quarantine.open(tmp_path, clock=clock, max_stored_bytes=settings.max_envelope_bytes)
    ingestor = Ingestor(verifier, FakeSink(), quarantine)
    future = catalogue_readings(3, start=START + timedelta(days=3650))
    assert isinstance(ingestor.ingest(EdgeSigner(SOURCE, key).seal(future).to_bytes()), Envelope)

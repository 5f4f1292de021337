"""Telemetry: readings, signed envelopes, sources, verification at ingest and quarantine."""

from aseptic.telemetry._reading import Quality, Reading

__all__ = ["Quality", "Reading"]

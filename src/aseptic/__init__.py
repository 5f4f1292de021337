"""Aseptic: tamper-evident data, models and controls for an AI-driven pharmaceutical plant."""

__version__ = "0.1.0"

__all__ = ["__version__"]

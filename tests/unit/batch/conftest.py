"""Fixtures of the batch tests (defined in batch_support so test modules can import its types)."""

from batch_support import site, template

__all__ = ["site", "template"]

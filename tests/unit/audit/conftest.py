"""Fixtures of the audit tests (defined in audit_support, so that test modules can import its types)."""

from audit_support import site, template

__all__ = ["site", "template"]

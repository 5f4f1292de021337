"""The validation pack (GAMP 5 style): requirements traced to the tests that prove them.

Tests name requirements with ``@pytest.mark.requirement("P11-11.10e", ...)``; ``pytest
--validation-record FILE`` records each test's outcome; ``trace`` joins the catalogue with that run
and ``render_html`` / ``render_markdown`` write the traceability matrix (docs/validation.md).
"""

from aseptic.validation._report import Trace, TraceMatrix, render_html, render_markdown, trace
from aseptic.validation._requirements import (
    RECORD_VERSION,
    Requirement,
    TestResult,
    TestRun,
    load_run,
    requirements,
)

__all__ = [
    "RECORD_VERSION",
    "Requirement",
    "TestResult",
    "TestRun",
    "Trace",
    "TraceMatrix",
    "load_run",
    "render_html",
    "render_markdown",
    "requirements",
    "trace",
]

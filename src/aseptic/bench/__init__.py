"""Benchmarks of Aseptic's detection: the twin attack bench (external data benches come with issue 6).

``run_twin_bench(batches, out)`` runs ``aseptic bench twin``; see docs/bench-twin.md.
"""

from aseptic.bench._twin import GROUPS, run_twin_bench

__all__ = ["GROUPS", "run_twin_bench"]

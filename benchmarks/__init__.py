"""Benchmarks: run as ``python -m benchmarks.<name>``; results are recorded in docs/benchmarks.md."""

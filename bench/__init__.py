"""Benchmarks (ARCHITECTURE §10): measured here, never by timed unit tests. See docs/benchmarks.md."""

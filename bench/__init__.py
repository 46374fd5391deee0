"""Benchmarks on the shared real footage (run as modules, e.g. `python -m bench.ingest_bench`)."""

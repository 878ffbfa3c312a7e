"""Benchmarks; each prints its ratio against a raw baseline (``python -m bench.<name> --help``)."""

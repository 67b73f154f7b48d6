"""Benchmarks that print ratios against floors measured in the same run (`python -m bench.core`)."""

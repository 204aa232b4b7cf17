"""Benchmarks: each prints its numbers and a baseline measured in the same run."""

"""Benchmarks: `python -m fmnist.bench` (throughput of the naive vs our pipeline, time-to-accuracy)."""

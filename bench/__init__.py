"""Benchmarks against the real control plane, routers and ExaBGP; figures go to bench/README.md."""

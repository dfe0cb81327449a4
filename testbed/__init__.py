"""The testbed: a real control plane and real BGP routers on loopback, with readers for their state.

Used by the tests, the demo and the benchmarks alike, so all three exercise the same real
components.
"""

"""The allocator's pure core: pool maths, sharing rules and the allocation plan.

Plain data in, decisions out; no Kubernetes client is imported here (a unit
test enforces it), so every rule is testable in microseconds.
"""

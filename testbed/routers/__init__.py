"""Real BGP routers (GoBGP, BIRD 2, FRR) started on loopback, and their own view of the world.

Each router reports sessions and RIB as the same dataclasses, read from the
router's machine-readable output, so a test asserts on what the router saw,
not on what exalb believes it sent.
"""

from .base import Neighbor, RibPath, Router, Session
from .bird import Bird
from .frr import Frr
from .gobgp import GoBgp

KINDS: dict[str, type[Router]] = {"gobgp": GoBgp, "bird": Bird, "frr": Frr}

__all__ = ["KINDS", "Bird", "Frr", "GoBgp", "Neighbor", "RibPath", "Router", "Session"]

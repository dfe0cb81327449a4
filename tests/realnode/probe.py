"""A dual-stack client namespace behind the bed's router, for HTTP to a Service's addresses.

It takes link ``PROBE_LINK`` of the bed's address plan (one past the client's,
link 15), so it never collides with a bed part; its addresses come from the same
benchmarking and documentation ranges, and its namespace goes at the end of the test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from testbed import dualstack, netns
from testbed.nodes import Bed, far_end, router_end

PROBE_LINK = 16
HTTP_TIMEOUT = 5.0  # seconds per request: a route that is there answers in milliseconds


@contextmanager
def probe_namespace(bed: Bed) -> Iterator[str]:
    """The namespace's name; its default routes (both families) go to the router."""
    name, k = bed.ns("probe"), PROBE_LINK
    netns.add(name)
    try:
        netns.link(
            (bed.ns("router"), "to-probe", f"{router_end(k)}/30"),
            (name, "eth0", f"{far_end(k)}/30"),
        )
        netns.route(name, "default", "via", router_end(k))
        dualstack.add_link_addresses(bed.ns("router"), "to-probe", name, k)
        yield name
    finally:
        netns.delete(name)


def http_get(namespace: str, address: str, port: int = 80) -> int:
    """The HTTP status of ``GET /`` to ``address`` from ``namespace`` (a new connection)."""
    host = f"[{address}]" if ":" in address else address
    code = (  # no proxy from the environment: the request must take the bed's route
        "import urllib.request as u; "
        "o = u.build_opener(u.ProxyHandler({})); "
        f"print(o.open('http://{host}:{port}/', timeout={HTTP_TIMEOUT}).status)"
    )
    return int(netns.run(namespace, [sys.executable, "-c", code]).strip())

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


def http_gets(namespace: str, address: str, count: int, port: int = 80) -> list[float]:
    """``count`` times ``GET /`` to ``address`` from ``namespace``, each on a new connection:
    the seconds each took. Raises on any answer but 200 or any failure."""
    host = f"[{address}]" if ":" in address else address
    code = f"""
import time, urllib.request as u
opener = u.build_opener(u.ProxyHandler({{}}))  # never a proxy: the request takes the bed's route
for _ in range({count}):
    t0 = time.monotonic()
    status = opener.open("http://{host}:{port}/", timeout={HTTP_TIMEOUT}).status
    assert status == 200, status
    print(time.monotonic() - t0)
"""
    return [float(line) for line in netns.run(namespace, [sys.executable, "-c", code]).split()]

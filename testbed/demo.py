"""`make demo`: exalb's best demonstration so far, on a local control plane and a real router.

Today (foundation stage) it starts etcd + kube-apiserver, a GoBGP router on
127.0.0.1/8, and an ExaBGP speaker; announces a /32 as a node would, prints
what the router itself reports, withdraws it and cleans up.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from kubernetes import client

from testbed.controlplane import start_control_plane
from testbed.exabgp import ExaBgpSpeaker, Peer
from testbed.procs import free_port
from testbed.routers import GoBgp, Neighbor

ROUTER, NODE = "127.0.100.1", "127.0.100.2"
PREFIX, NEXT_HOP = "198.51.100.1/32", "192.0.2.1"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="exalb-demo-"))
    print(f"exalb demo: work dir {work}")
    cp = start_control_plane(work / "control-plane")
    router = GoBgp(ROUTER, free_port(ROUTER), 64512, [Neighbor(NODE, 64513)], work / "gobgp")
    speaker = ExaBgpSpeaker(NODE, 64513, [Peer(ROUTER, router.port, 64512)], work / "exabgp")
    try:
        with cp.api_client() as api:
            v = client.VersionApi(api).get_code()
            print(f"control plane: kube-apiserver {v.git_version} at {cp.url} (RBAC on)")
        router.start()
        speaker.start()
        s = router.wait_session(NODE)
        print(f"router {ROUTER} (GoBGP AS64512): session with {NODE} is {s.state}")
        speaker.command(f"announce route {PREFIX} next-hop {NEXT_HOP} community [65000:100]")
        (path,) = router.wait_next_hops(PREFIX, {NEXT_HOP})
        print(
            f"router RIB: {path.prefix} via {path.next_hop} as-path {list(path.as_path)} "
            f"communities {list(path.communities)}"
        )
        speaker.command(f"withdraw route {PREFIX} next-hop {NEXT_HOP}")
        t0 = time.monotonic()
        router.wait_absent(PREFIX)
        print(
            f"withdrawn: the router dropped {PREFIX} after {1000 * (time.monotonic() - t0):.0f} ms"
        )
    finally:
        speaker.stop()
        router.stop()
        cp.stop()
    print("demo done; everything stopped")


if __name__ == "__main__":
    main()

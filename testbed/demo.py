"""`make demo`: exalb doing its job on a local control plane, two nodes and a real router.

Everything is real: kube-apiserver + etcd (+ controller-manager) from tools/kubebin, the
allocator and two announcers as their own processes with the chart's RBAC, each announcer
driving its own ExaBGP, and GoBGP as the top-of-rack router. Nodes are simulated: each is
an announcer process with its own NODE_NAME and loopback source address, and a Node object
whose InternalIP (TEST-NET-1) is the next hop the router learns.
"""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from testbed.allocator import AllocatorProc, apply_rbac, create_pool, start_allocator
from testbed.controlplane import start_control_plane
from testbed.lab import Lab
from testbed.manifests import install_crds
from testbed.procs import free_port, wait_for
from testbed.routers import GoBgp

NS = "exalb-system"


def show(router: GoBgp, title: str) -> None:
    rib = router.rib()
    print(f"\n  router {router.address} (GoBGP AS{router.asn}) RIB — {title}:")
    if not rib:
        print("    (empty)")
    for prefix, paths in sorted(rib.items()):
        for p in sorted(paths, key=lambda p: p.next_hop):
            print(
                f"    {prefix:<18} via {p.next_hop:<12} as-path {list(p.as_path)} "
                f"communities {list(p.communities)}"
            )


def hops(router: GoBgp, prefix: str) -> set[str]:
    return {p.next_hop for p in router.rib().get(prefix, [])}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="exalb-demo-"))
    print(f"exalb demo (logs and configs in {work})")
    cp = start_control_plane(work / "control-plane")
    api = cp.api_client()
    core: Any = client.CoreV1Api(api)
    lab: Lab | None = None
    router: GoBgp | None = None
    allocator: AllocatorProc | None = None
    try:
        print(
            f"1. control plane: kube-apiserver {client.VersionApi(api).get_code().git_version} "
            f"at {cp.url}, RBAC on"
        )
        install_crds(api)
        core.create_namespace({"metadata": {"name": NS}})
        apply_rbac(api, NS)
        lab = Lab(cp, api, NS, work)
        router = GoBgp(
            f"127.1.{lab.lab_id}.1", free_port(), 64512, lab.neighbors(2), work / "gobgp"
        )
        router.start()
        lab.add_peer("tor", router)
        lab.add_node(1)
        lab.add_node(2)
        for i in (1, 2):
            router.wait_session(lab.source(i))
        print(
            f"2. router {router.address} AS64512 has established sessions with "
            f"{lab.node(1).name} ({lab.source(1)}) and {lab.node(2).name} ({lab.source(2)})"
        )

        create_pool(
            api,
            NS,
            "public",
            ["198.51.100.0/28"],
            bgpAdvertisements=[{"communities": ["65000:100"]}],
        )
        allocator = start_allocator(cp, NS, work, "demo-allocator", log_level="info")
        print("3. VIPPool 'public' 198.51.100.0/28 created; allocator running (Lease leader)")

        def service(name: str, policy: str) -> str:
            core.create_namespaced_service(
                NS,
                {
                    "metadata": {"name": name},
                    "spec": {
                        "type": "LoadBalancer",
                        "externalTrafficPolicy": policy,
                        "allocateLoadBalancerNodePorts": False,
                        "ports": [{"port": 80, "protocol": "TCP"}],
                        "selector": {"app": name},
                    },
                },
            )
            ip: list[str] = []

            def got() -> bool:
                s = core.read_namespaced_service_status(name, NS)
                ing = (s.status.load_balancer.ingress or []) if s.status.load_balancer else []
                ip[:] = [i.ip for i in ing]
                return bool(ip)

            wait_for(f"{name} IP", got, 30)
            return ip[0]

        web = service("web", "Cluster")
        lab.set_endpoints("web", {1: True})
        print(f"4. Service web (externalTrafficPolicy Cluster) got {web}; one ready pod on node 1")
        (router.wait_next_hops(f"{web}/32", {lab.hop(1), lab.hop(2)}))
        show(router, "Cluster: every eligible node is a next hop (ECMP)")

        api_ip = service("api", "Local")
        lab.set_endpoints("api", {2: True})
        router.wait_next_hops(f"{api_ip}/32", {lab.hop(2)})
        print(f"\n5. Service api (Local) got {api_ip}; its only ready pod is on node 2")
        show(router, "Local: only the node with a ready endpoint")

        t0 = time.monotonic()
        lab.set_endpoints("api", {2: False})
        router.wait_absent(f"{api_ip}/32")
        print(
            f"\n6. api's pod turned unready: the router dropped {api_ip}/32 "
            f"{1000 * (time.monotonic() - t0):.0f} ms after the EndpointSlice update"
        )
        show(router, "after the endpoint went unready")

        node1 = lab.node(1)
        assert node1.proc is not None
        t0 = time.monotonic()
        node1.proc.signal(signal.SIGTERM)
        router.wait_next_hops(f"{web}/32", {lab.hop(2)})
        print(
            f"\n7. announcer on node 1 got SIGTERM: it withdrew its routes before closing the "
            f"session; the router had only node 2 for {web} after "
            f"{1000 * (time.monotonic() - t0):.0f} ms"
        )
        show(router, "node 1 drained")
        r = router
        wait_for(
            "node 1's session to close", lambda: not r.sessions()[lab.source(1)].established, 10
        )
        session = router.sessions()[lab.source(1)]
        print(
            f"   then it closed the session: the router shows it {session.state}, "
            f"last error: {session.last_error}"
        )
    finally:
        if allocator is not None:
            allocator.proc.stop()
        if lab is not None:
            lab.close()
        if router is not None:
            router.stop()
        cp.stop()
    print("\ndemo done; everything stopped")


if __name__ == "__main__":
    main()

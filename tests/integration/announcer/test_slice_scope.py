"""Announcers watch only the EndpointSlices of assigned Services, and a rollout drops no route.

The real kube-controller-manager's EndpointSlice controller copies the allocator's
``exalb.io/assigned`` label from each Service to its slices, so this module runs its own
control plane with that controller, Pods whose status the test sets, and real
allocators and announcers: this version's, and the version before the change (the
commit :data:`BEFORE`, run from a ``git archive`` of it) on either side of the rollout.

"No route dropped" is the router's word: node 1's UPDATE count at GoBGP does not move
from its first announcement to the end, through allocator upgrade and rollback, and a
label someone removed while no allocator ran.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from exalb.assignments.slicescope import SCOPE_ANNOTATION, SERVICE_LABEL, SLICE_SELECTOR
from testbed.allocator import AllocatorProc, apply_rbac, delete_rbac, start_allocator
from testbed.binaries import ROOT
from testbed.controlplane import TEST_CONTROLLERS, ControlPlane
from testbed.lab import Lab
from testbed.manifests import install_crds
from testbed.procs import wait_for
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

# The last commit before the EndpointSlice scope: its allocator labels nothing and its
# announcer watches every EndpointSlice.
BEFORE = "63e3114e33fd8997e52c50949fa5b16eea3c81ed"
POOL_CIDR = "198.51.100.0/28"


@pytest.fixture(scope="module")
def before(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source tree of :data:`BEFORE`, to run its allocator and announcer."""
    out = tmp_path_factory.mktemp("before")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BEFORE], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(
        tmp_path_factory.mktemp("slice-scope-cp"),
        controllers=f"{TEST_CONTROLLERS},endpointslice-controller",
    )
    try:
        cp.start()
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def lab(plane: ControlPlane, tmp_path: Path) -> Iterator[Lab]:
    api = plane.api_client()
    core = client.CoreV1Api(api)
    wait_for("default namespace", lambda: _exists(core), 30)
    namespace = "scope"
    core.create_namespace({"metadata": {"name": namespace}})
    install_crds(api)
    apply_rbac(api, namespace, f"-{namespace}")
    the_lab = Lab(plane, api, namespace, tmp_path)
    yield the_lab
    print(the_lab.logs())
    the_lab.close()
    delete_rbac(api, f"-{namespace}")


def _exists(core: client.CoreV1Api) -> bool:
    try:
        core.read_namespace("default")
        return True
    except Exception:
        return False


def _service_with_pod(lab: Lab, name: str, node: int, pod_ip: str) -> None:
    """A LoadBalancer Service (Local) and one ready Pod on ``node``, as a kubelet reports it."""
    core = client.CoreV1Api(lab.api)
    ns = lab.namespace
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": f"{name}-pod", "labels": {"app": name}},
            "spec": {
                "nodeName": lab.node(node).name,
                "containers": [{"name": "c", "image": "none", "ports": [{"containerPort": 80}]}],
            },
        },
    )
    core.patch_namespaced_pod_status(
        f"{name}-pod",
        ns,
        {
            "status": {
                "phase": "Running",
                "podIP": pod_ip,
                "podIPs": [{"ip": pod_ip}],
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
    )
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": name},
            "spec": {
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "selector": {"app": name},
                "ports": [{"port": 80, "protocol": "TCP"}],
            },
        },
    )


def _ip(lab: Lab, name: str) -> str:
    def ingress() -> list[str]:
        st = client.CoreV1Api(lab.api).read_namespaced_service_status(name, lab.namespace).status
        lb = st.load_balancer if st else None
        return [i.ip for i in (lb.ingress or [])] if lb else []

    wait_for(f"{name} to get an IP", lambda: bool(ingress()), 30)
    return ingress()[0]


def _slice_labels(lab: Lab, name: str) -> list[dict[str, str]]:
    slices = client.DiscoveryV1Api(lab.api).list_namespaced_endpoint_slice(
        lab.namespace, label_selector=f"kubernetes.io/service-name={name}"
    )
    return [dict(s.metadata.labels or {}) for s in slices.items]


def _shards_declare(lab: Lab) -> bool:
    cms = client.CoreV1Api(lab.api).list_namespaced_config_map(
        lab.namespace, label_selector="exalb.io/assignments=true"
    )
    return bool(cms.items) and all(
        (cm.metadata.annotations or {}).get(SCOPE_ANNOTATION) == SLICE_SELECTOR for cm in cms.items
    )


def _logged(lab: Lab, i: int, text: str) -> bool:
    proc = lab.node(i).proc
    return proc is not None and text in proc.log.read_text(errors="replace")


def test_upgrade_and_rollback_of_the_allocator_drop_no_route(
    lab: Lab, before: Path, tmp_path: Path, router: RouterFactory
) -> None:
    gobgp = router("gobgp", lab.router_ip, 64512, lab.neighbors(2))
    started: list[AllocatorProc] = []

    def allocator(identity: str, code: Path) -> AllocatorProc:
        started.append(start_allocator(lab.cp, lab.namespace, tmp_path, identity, code=code))
        return started[-1]

    try:
        lab.add_peer("tor", gobgp)
        lab.add_pool("main", [POOL_CIDR])
        lab.add_node(1, start=False)
        lab.add_node(2, start=False)
        # The allocator of the version before: Services unlabelled, shards without the scope.
        old = allocator("old-1", before)
        _service_with_pod(lab, "web", 1, "198.18.128.1")
        web = f"{_ip(lab, 'web')}/32"
        # This version's announcer watches every EndpointSlice, as the shards do not vouch.
        lab.start_announcer(1)
        gobgp.wait_next_hops(web, {lab.hop(1)}, timeout=60)
        assert _logged(lab, 1, '"selector": "(all)"')
        assert not _logged(lab, 1, "EndpointSlice scope changed")
        updates = gobgp.updates_received(lab.source(1))

        # Upgrade: this version's allocator labels the Service, the EndpointSlice
        # controller copies it to the slice, the shards vouch, and the announcer narrows.
        old.proc.stop()
        new = allocator("new-1", ROOT)
        wait_for("shards vouch for the selector", lambda: _shards_declare(lab), 30)
        wait_for(
            "the slice carries the label",
            lambda: all(ls.get(SERVICE_LABEL) == "true" for ls in _slice_labels(lab, "web")),
            30,
        )
        wait_for("node 1 narrows its watch", lambda: _scope_changes(lab, 1) == 1, 30)
        assert _logged(lab, 1, f'"selector": "{SLICE_SELECTOR}"')
        # Someone's edit drops the label while no allocator runs to write it back: the
        # controller takes it off the slice, and node 1 reads the slice from the API
        # instead of withdrawing; the next allocator labels it again.
        new.proc.stop()
        client.CoreV1Api(lab.api).patch_namespaced_service(
            "web", lab.namespace, {"metadata": {"labels": {SERVICE_LABEL: None}}}
        )
        wait_for(
            "the label off the slice",
            lambda: all(SERVICE_LABEL not in ls for ls in _slice_labels(lab, "web")),
            30,
        )
        time.sleep(3)  # three re-reads of the held slice
        assert _logged(lab, 1, "could not read") is False
        assert gobgp.rib()[web][0].next_hop == lab.hop(1)
        new = allocator("new-2", ROOT)
        wait_for(
            "node 1 sees the held slice labelled again",
            lambda: (
                _logged(lab, 1, "a held EndpointSlice is labelled again")
                or _logged(lab, 1, '"labelled": true')
            ),
            30,
        )
        # An old announcer against this allocator: it still reads every slice, and announces.
        lab.start_announcer(2, code=before)
        _service_with_pod(lab, "api", 2, "198.18.128.2")
        api = f"{_ip(lab, 'api')}/32"
        gobgp.wait_next_hops(api, {lab.hop(2)}, timeout=60)

        # Rollback: the old allocator publishes a new Service; the shard it rewrites no
        # longer vouches, so this version's announcer widens again and sees the new one.
        new.proc.stop()
        lab.stop_announcer(2)
        lab.start_announcer(2)
        allocator("old-2", before)
        _service_with_pod(lab, "db", 2, "198.18.128.3")
        db = f"{_ip(lab, 'db')}/32"
        gobgp.wait_next_hops(db, {lab.hop(2)}, timeout=60)
        wait_for("node 1 widens its watch", lambda: _scope_changes(lab, 1) == 2, 30)

        assert gobgp.rib()[web][0].next_hop == lab.hop(1)
        assert gobgp.updates_received(lab.source(1)) == updates, "node 1 sent an UPDATE"
    finally:
        for a in started:
            a.proc.stop()


def _scope_changes(lab: Lab, i: int) -> int:
    proc = lab.node(i).proc
    assert proc is not None
    return proc.log.read_text(errors="replace").count("EndpointSlice scope changed")

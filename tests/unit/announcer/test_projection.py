"""The informer projections keep everything the decision reads (and nothing secret but the key)."""

from __future__ import annotations

from announcer.kube.convert import node_from, peer_from, secret_password, slice_endpoints
from announcer.kube.sources import slim_node, slim_peer, slim_secret, slim_slice

SLICE = {
    "metadata": {
        "name": "web-x",
        "namespace": "ns",
        "resourceVersion": "7",
        "labels": {"kubernetes.io/service-name": "web", "other": "x"},
        "managedFields": [{"manager": "kcm"}],
    },
    "addressType": "IPv4",
    "endpoints": [
        {"addresses": ["192.0.2.1", "192.0.2.2"], "nodeName": "n1", "conditions": {"ready": True}},
        {"addresses": [], "nodeName": "n2", "conditions": {"ready": True}},
        {"addresses": ["192.0.2.3"], "nodeName": "n3", "conditions": {"ready": False}},
    ],
}


def test_slice_projection_decides_the_same() -> None:
    slim = slim_slice(SLICE)
    svc, eps = slice_endpoints(SLICE)
    assert (slim["service"], list(slim["endpoints"])) == (svc, eps) == ("ns/web", eps)
    assert [e.node for e in eps] == ["n1", "n3"]  # no addresses: not an endpoint
    assert "managedFields" not in slim["metadata"] and slim["metadata"]["resourceVersion"] == "7"
    again = slim_slice(SLICE)
    assert again["endpoints"][0] is slim["endpoints"][0]  # equal endpoints are shared


def test_node_peer_secret_projections() -> None:
    node = {
        "metadata": {"name": "n1", "labels": {"a": "b"}, "resourceVersion": "3", "uid": "u"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "message": "long text"}],
            "addresses": [{"type": "InternalIP", "address": "192.0.2.11"}],
            "images": ["big"] * 10,
        },
    }
    assert node_from(slim_node(node)) == node_from(node)
    peer = {"metadata": {"name": "tor"}, "spec": {"myASN": 1, "peerASN": 2, "peerAddress": "::1"}}
    assert peer_from(slim_peer(peer), {}, "bgp") == peer_from(peer, {}, "bgp")
    secret = {"metadata": {"name": "s"}, "data": {"password": "cHc=", "other": "eA=="}}
    assert slim_secret(secret)["data"] == {"password": "cHc="}
    assert secret_password(slim_secret(secret)) == "pw"

"""ExaBGP config rendering and API-object conversion."""

from __future__ import annotations

import base64

import pytest

from announcer.core.config import render
from announcer.core.model import Attrs
from announcer.kube.convert import endpoints_from, node_from, peer_from
from exalb.bgppeer import Peer, duration


def test_render_session_without_routes_and_secret_in_base64() -> None:
    p = Peer("tor", 64513, 64512, "127.1.0.1", 1179, password='p a"ss', ttl_security=True)
    text = render(p, "127.1.0.11", "127.1.0.11", ["/py", "bridge.py", "/s"])
    assert "neighbor 127.1.0.1 {" in text
    assert "connect 1179;" in text and "hold-time 30;" in text
    encoded = base64.b64encode(b'p a"ss').decode()
    assert f"md5-password {encoded};" in text
    assert "md5-base64 true;" in text
    assert "incoming-ttl 255;" in text
    assert "static" not in text and "route " not in text
    assert "p a" not in text


def test_render_seed_and_graceful_restart() -> None:
    p = Peer("tor", 64513, 64513, "127.1.0.1", graceful_restart=True, ebgp_multihop=True)
    seed = {"198.51.100.1/32": Attrs("192.0.2.11", ("65000:1",), (), 120)}
    text = render(p, "127.1.0.11", "127.1.0.11", ["/py"], seed)
    assert "graceful-restart 30;" in text
    assert "outgoing-ttl 255;" in text
    assert (
        "route 198.51.100.1/32 next-hop 192.0.2.11 community [65000:1] local-preference 120;"
        in text
    )
    assert "password=" not in repr(p)


def test_duration() -> None:
    assert duration("1m30s") == 90
    assert duration("250ms") == 0.25
    assert duration(None) is None
    with pytest.raises(ValueError):
        duration("10 parsecs")


def test_node_from() -> None:
    n = node_from(
        {
            "metadata": {"name": "n1", "labels": {"a": "b"}},
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    },
                    {"type": "NetworkUnavailable", "status": "True"},
                ],
                "addresses": [{"type": "InternalIP", "address": "192.0.2.11"}],
            },
        }
    )
    assert n.ready and n.network_unavailable and n.labels == {"a": "b"}
    assert n.addresses == (("InternalIP", "192.0.2.11"),)
    assert n.ready_since == 1767225600.0


def test_endpoints_from() -> None:
    s = {
        "metadata": {"namespace": "ns", "labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [
            {"addresses": ["192.0.2.1"], "nodeName": "n1", "conditions": {}},
            {"addresses": ["192.0.2.2"], "nodeName": "n2", "conditions": {"ready": False}},
            {"addresses": [], "nodeName": "n3", "conditions": {"ready": True}},
        ],
    }
    eps = endpoints_from([s, {"metadata": {"namespace": "ns"}}])
    assert [(e.node, e.usable) for e in eps["ns/web"]] == [("n1", True), ("n2", False)]


def test_peer_from_with_secret_and_problems() -> None:
    obj = {
        "metadata": {"name": "tor"},
        "spec": {
            "myASN": 64513,
            "peerASN": 64512,
            "peerAddress": "127.1.0.1",
            "holdTime": "9s",
            "passwordSecret": {"name": "md5"},
            "nodeSelectors": [{"matchLabels": {"zone": "a"}}],
        },
    }
    secret = {"data": {"password": base64.b64encode(b"s3cret").decode()}}
    p = peer_from(obj, {"md5": secret}, "bgp")
    assert p.problem is None and p.password == "s3cret" and p.hold_time == 9
    assert "s3cret" not in repr(p)
    assert peer_from(obj, {}, "bgp").problem == (
        "passwordSecret 'md5' is missing from namespace 'bgp' or has no 'password' key"
    )
    bad = {"metadata": {"name": "x"}, "spec": {"myASN": 1, "peerASN": 2, "peerAddress": "nope"}}
    assert "peerAddress" in (peer_from(bad, {}, "bgp").problem or "")
    short = {"metadata": {"name": "x"}, "spec": {**obj["spec"], "holdTime": "2s"}}
    assert "holdTime" in (peer_from(short, {}, "bgp").problem or "")


def test_peer_naming_another_secrets_namespace_is_refused_not_ignored() -> None:
    """The CRD refuses it; an object stored before that rule gets the same answer here."""
    spec = {"myASN": 1, "peerASN": 2, "peerAddress": "127.1.0.1"}
    ref = {"name": "md5", "namespace": "metallb-system"}
    secret = {"data": {"password": base64.b64encode(b"s3cret").decode()}}
    p = peer_from(
        {"metadata": {"name": "tor"}, "spec": {**spec, "passwordSecret": ref}},
        {"md5": secret},
        "bgp",
    )
    assert p.password is None
    assert p.problem == (
        "passwordSecret.namespace is not supported: the Secret must be in the BGP secrets "
        "namespace 'bgp'"
    )

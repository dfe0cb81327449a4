"""Incremental desired state: any sequence of per-Service updates equals a full decide().

The generated Services share IPs and aggregate into common prefixes on purpose,
so removing one must leave the others' merged attributes exactly as a full
recompute would have them.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from announcer.core.datapath import CheckState, Probe, record
from announcer.core.decide import context, decide
from announcer.core.desired import DesiredState
from announcer.core.model import Attrs, Endpoint, Node, NodeCommunity, Options
from announcer.core.pools import pool_space
from exalb.assignments import Advertisement, Assignment, DataPathCheck, DataPathTarget, Degraded
from exalb.bgppeer import Peer

OPTS = Options(node_name="n1", node_community=NodeCommunity())
POOLS = {"pool": pool_space({"addresses": ["198.51.100.0/24"]})}
NODE = Node("n1", {"zone": "a"}, addresses=(("InternalIP", "192.0.2.11"),))
PEERS = [Peer("tor", 64513, 64512, "127.1.0.1"), Peer("rr", 64513, 64513, "127.1.0.2")]
NAMES = [f"s{i}" for i in range(6)]

advertisements = st.builds(
    Advertisement,
    aggregation_length=st.sampled_from([32, 32, 30]),
    communities=st.sampled_from([(), ("64512:1",), ("64512:2",)]),
    local_pref=st.sampled_from([None, 100, 200]),
    peers=st.sampled_from([(), ("tor",), ("rr",)]),
    med=st.sampled_from([None, 10, 20]),
    degraded=st.sampled_from(
        [None, Degraded(med=500, as_path_prepend=2), Degraded(local_pref=50, communities=("1:1",))]
    ),
    mbps_per_endpoint=st.sampled_from([None, 10]),
    data_path_check=st.sampled_from([None, None, DataPathCheck()]),
)
TARGET = DataPathTarget("198.19.0.12", 80)
# A Service's data path probes on this node: none yet, passing, failing, recovering.
check_states = st.sampled_from(
    [
        None,
        record(None, Probe(str(TARGET), True, "connected", 1.0)),
        record(None, Probe(str(TARGET), False, "refused", 1.0)),
        record(
            record(None, Probe(str(TARGET), False, "refused", 1.0)),
            Probe(str(TARGET), True, "connected", 2.0),
        ),
    ]
)


@st.composite
def assignments(draw: st.DrawFn, name: str) -> Assignment:
    ips = draw(
        st.lists(
            st.sampled_from(["198.51.100.1", "198.51.100.2", "198.51.100.5"]),
            min_size=1,
            max_size=2,
        )
    )
    return Assignment(
        "ns",
        name,
        "u",
        tuple(dict.fromkeys(ips)),
        "pool",
        draw(st.sampled_from(["Cluster", "Local"])),
        tuple(draw(st.lists(advertisements, min_size=1, max_size=2))),
        data_path=TARGET,
    )


endpoints = st.lists(
    st.builds(
        Endpoint, st.sampled_from(["n1", "n2", None]), st.booleans(), st.booleans(), st.booleans()
    ),
    max_size=3,
)


@st.composite
def steps(
    draw: st.DrawFn,
) -> list[tuple[str, Assignment | None, list[Endpoint], CheckState | None]]:
    out = []
    for _ in range(draw(st.integers(1, 25))):
        name = draw(st.sampled_from(NAMES))
        a = draw(st.none() | assignments(name))
        out.append((name, a, draw(endpoints), draw(check_states)))
    return out


@settings(max_examples=300, deadline=None)
@given(steps())
def test_updates_match_a_full_recompute(
    ops: list[tuple[str, Assignment | None, list[Endpoint], CheckState | None]],
) -> None:
    ctx = context(NODE, PEERS, OPTS, 0, POOLS)
    state = DesiredState()
    state.rebuild(ctx, [], {})
    current: dict[str, Assignment] = {}
    eps: dict[str, list[Endpoint]] = {}
    checks: dict[str, CheckState] = {}
    for name, a, e, check in ops:
        before = {p: dict(r) for p, r in state.routes.items()}
        if a is None:
            current.pop(name, None)
        else:
            current[name] = a
        eps[f"ns/{name}"] = e
        if check is None:
            checks.pop(f"ns.{name}", None)
        else:
            checks[f"ns.{name}"] = check
        touched = state.update(f"ns.{name}", a, e, check)
        full = decide(NODE, PEERS, current.values(), eps, OPTS, 0, POOLS, checks)
        assert state.routes == full.routes
        assert state.reasons == full.reasons
        assert state.announced == full.announced
        for peer, routes in state.routes.items():
            changed = {
                p
                for p in routes.keys() | before[peer].keys()
                if routes.get(p) != before[peer].get(p)
            }
            assert changed <= touched.get(peer, set()), (peer, changed, touched)


def test_rebuild_equals_decide_and_unchanged_inputs_touch_nothing() -> None:
    a = Assignment("ns", "web", "u", ("198.51.100.1",), "pool")
    eps = {"ns/web": [Endpoint("n2")]}
    state = DesiredState()
    state.rebuild(context(NODE, PEERS, OPTS, 0, POOLS), [a], eps)
    assert state.routes == decide(NODE, PEERS, [a], eps, OPTS, 0, POOLS).routes
    node_tag = ("64513:1:3221225995",)  # 192.0.2.11 as a number
    assert state.routes["tor"] == {"198.51.100.1/32": Attrs("192.0.2.11", (), node_tag)}
    assert state.update(a.key, a, eps["ns/web"]) == {}
    assert state.update(a.key, None, None) == {
        "tor": {"198.51.100.1/32"},
        "rr": {"198.51.100.1/32"},
    }
    assert state.routes == {"tor": {}, "rr": {}}

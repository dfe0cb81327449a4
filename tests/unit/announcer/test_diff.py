"""Commands from a diff: applying them to what ExaBGP holds yields exactly what is desired."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from announcer.core.diff import commands, diff
from announcer.core.model import Attrs, Routes

PREFIXES = st.sampled_from([f"198.51.100.{i}/32" for i in range(40)])
ATTRS = st.builds(
    Attrs,
    next_hop=st.sampled_from(["192.0.2.11", "192.0.2.12"]),
    communities=st.sampled_from([(), ("65000:1",), ("65000:1", "65000:2")]),
    large_communities=st.sampled_from([(), ("64512:1:2",)]),
    local_pref=st.sampled_from([None, 100, 200]),
)
ROUTES = st.dictionaries(PREFIXES, ATTRS, max_size=40)


def apply(current: Routes, desired: Routes, batch: int) -> tuple[Routes, int]:
    out = dict(current)
    cmds = commands(desired, current, batch)
    for c in cmds:
        for prefix, attrs in c.changes:
            if attrs is None:
                out.pop(prefix, None)
            else:
                out[prefix] = attrs
    return out, len(cmds)


@given(ROUTES, ROUTES, st.integers(1, 50))
def test_commands_converge(current: Routes, desired: Routes, batch: int) -> None:
    result, _ = apply(current, desired, batch)
    assert result == desired
    again = commands(desired, result, batch)
    assert again == []


@given(ROUTES)
def test_equal_attributes_share_a_command(desired: Routes) -> None:
    _, n = apply({}, desired, 10_000)
    assert n == len(set(desired.values()))


def test_command_text() -> None:
    a = Attrs("192.0.2.11", ("65000:1",), ("64512:1:2",), 150)
    cur = {"198.51.100.9/32": Attrs("192.0.2.11")}
    cmds = commands({"198.51.100.1/32": a, "198.51.100.2/32": a}, cur)
    assert [c.line for c in cmds] == [
        "withdraw attributes next-hop 192.0.2.11 nlri 198.51.100.9/32",
        "announce attributes next-hop 192.0.2.11 community [65000:1] large-community [64512:1:2] "
        "local-preference 150 nlri 198.51.100.1/32 198.51.100.2/32",
    ]
    ann, wd = diff({}, cur)
    assert ann == {} and wd == {"192.0.2.11": ["198.51.100.9/32"]}

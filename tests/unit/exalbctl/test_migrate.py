"""exalbctl.core.migrate: MetalLB objects (written from MetalLB's docs) -> exalb objects + findings.

Each fixture pair is fixtures/metallb/<case>.yaml (input) and fixtures/exalb/<case>.yaml
(the expected objects, each field checked by hand against docs/vippool.md and
docs/bgppeer.md); the integration tests apply the same expected files to the real
apiserver, so they are known to validate against exalb's CRDs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from exalbctl.core.durations import DurationError, format_seconds, parse_duration
from exalbctl.core.mapping import Finding
from exalbctl.core.metallb_peer import migrate_peer
from exalbctl.core.metallb_pool import migrate_advertisement, migrate_pool, resolve_community
from exalbctl.core.migrate import migrate
from exalbctl.core.selectors import SelectorError, matches

FIXTURES = Path(__file__).parent / "fixtures"
NS = "exalb-system"


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def keys(findings: tuple[Finding, ...] | list[Finding]) -> set[tuple[bool, str, str]]:
    return {(f.lost, f.source, f.field) for f in findings}


LOST, NOTE = True, False
CASES = sorted(p.stem for p in (FIXTURES / "metallb").glob("*.yaml"))


def expected_findings(case: str) -> set[tuple[bool, str, str]]:
    """``fixtures/exalb/<case>.findings``: one ``LOST|NOTE object field`` per line."""
    lines = (FIXTURES / "exalb" / f"{case}.findings").read_text().splitlines()
    rows = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    return {(kind == "LOST", source, "" if field == "-" else field) for kind, source, field in rows}


@pytest.mark.parametrize("case", CASES)
def test_documented_examples(case: str) -> None:
    m = migrate(load(FIXTURES / "metallb" / f"{case}.yaml"), NS)
    assert list(m.objects) == load(FIXTURES / "exalb" / f"{case}.yaml")
    assert keys(m.findings) == expected_findings(case)
    assert all(f.reason for f in m.findings)


def test_every_case_has_expectations() -> None:
    assert len(CASES) == 4
    for case in CASES:
        assert (FIXTURES / "exalb" / f"{case}.yaml").is_file()
        assert (FIXTURES / "exalb" / f"{case}.findings").is_file()


def test_reasons_name_what_is_lost() -> None:
    m = migrate(load(FIXTURES / "metallb" / "peers.yaml"), NS)
    reasons = {(f.source, f.field): f.reason for f in m.findings}
    assert "3s" in reasons[("BGPPeer/fast-keepalive", "spec.keepaliveTime")]
    assert "64999" in reasons[("BGPPeer/in-vrf", "spec.localASN")]
    assert "metallb-system/secretname" in reasons[("BGPPeer/secured", "spec.passwordSecret")]
    assert "exalb-system-bgp-secrets" in reasons[("BGPPeer/secured", "spec.passwordSecret")]


def test_the_bgp_secrets_namespace_can_be_named() -> None:
    m = migrate(load(FIXTURES / "metallb" / "peers.yaml"), NS, "bgp-passwords")
    reasons = {(f.source, f.field): f.reason for f in m.findings}
    assert "to namespace bgp-passwords" in reasons[("BGPPeer/secured", "spec.passwordSecret")]


def bfd_profile(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "BFDProfile",
        "metadata": {"name": name, "namespace": "metallb-system"},
        "spec": spec,
    }


def test_a_bfd_profile_becomes_the_peers_spec_bfd() -> None:
    objs = [
        peer(bfdProfile="fast"),
        bfd_profile("fast", receiveInterval=50, transmitInterval=60, detectMultiplier=4),
        bfd_profile("spare", detectMultiplier=3),
    ]
    m = migrate(objs, NS)
    (out,) = m.objects
    assert out["spec"]["bfd"] == {
        "minReceiveInterval": 50,
        "minTransmitInterval": 60,
        "detectMultiplier": 4,
    }
    assert keys(m.findings) == {(NOTE, "BFDProfile/spare", "")}


def test_a_default_profile_is_bfd_with_exalbs_defaults_which_are_metallbs() -> None:
    (out,) = migrate([peer(bfdProfile="plain"), bfd_profile("plain")], NS).objects
    assert out["spec"]["bfd"] == {}


def test_what_exalbs_bfd_does_not_do_is_lost_once_per_profile() -> None:
    objs = [
        peer(bfdProfile="echo"),
        bfd_profile("echo", echoMode=True, echoInterval=50, passiveMode=True, minimumTtl=254),
    ]
    m = migrate(objs, NS)
    assert keys(m.findings) == {
        (LOST, "BFDProfile/echo", "spec.echoMode"),
        (NOTE, "BFDProfile/echo", "spec.echoInterval"),
        (LOST, "BFDProfile/echo", "spec.passiveMode"),
        (LOST, "BFDProfile/echo", "spec.minimumTtl"),
    }


def test_a_missing_bfd_profile_is_no_bfd_and_lost() -> None:
    m = migrate([peer(bfdProfile="nowhere")], NS)
    assert "bfd" not in m.objects[0]["spec"]
    assert keys(m.findings) == {(LOST, "BGPPeer/p", "spec.bfdProfile")}


def peer(**spec: Any) -> dict[str, Any]:
    base = {"myASN": 64512, "peerASN": 64513, "peerAddress": "192.0.2.1"}
    return {
        "apiVersion": "metallb.io/v1beta2",
        "kind": "BGPPeer",
        "metadata": {"name": "p", "namespace": "metallb-system"},
        "spec": {**base, **spec},
    }


BASE_PEER = {"myASN": 64512, "peerASN": 64513, "peerAddress": "192.0.2.1"}
PEER_CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None, set[tuple[bool, str]]]] = [
    # (name, MetalLB spec overrides, expected exalb spec or None, expected (lost, field))
    ("plain", {}, BASE_PEER, set()),
    ("hold only", {"holdTime": "2m"}, {**BASE_PEER, "holdTime": "120s"}, set()),
    ("hold zero", {"holdTime": "0s"}, {**BASE_PEER, "holdTime": "0s"}, set()),
    (
        "hold and matching keepalive",
        {"holdTime": "9s", "keepaliveTime": "3s"},
        {**BASE_PEER, "holdTime": "9s", "keepaliveTime": "3s"},
        set(),
    ),
    (
        "keepalive only: hold = 3 x keepalive (MetalLB's parseTimers)",
        {"keepaliveTime": "20s"},
        {**BASE_PEER, "holdTime": "60s", "keepaliveTime": "20s"},
        set(),
    ),
    (
        "keepalive not hold/3",
        {"holdTime": "90s", "keepaliveTime": "10s"},
        {**BASE_PEER, "holdTime": "90s"},
        {(LOST, "spec.keepaliveTime")},
    ),
    ("bad duration", {"holdTime": "soon"}, BASE_PEER, {(LOST, "spec.holdTime/keepaliveTime")}),
    (
        "password",
        {"password": "x" * 80},
        {**BASE_PEER, "password": "x" * 80},
        set(),
    ),
    ("password too long", {"password": "x" * 81}, BASE_PEER, {(LOST, "spec.password")}),
    (
        "secret already in exalb's BGP secrets namespace",
        {"passwordSecret": {"name": "md5", "namespace": f"{NS}-bgp-secrets"}},
        {**BASE_PEER, "passwordSecret": {"name": "md5"}},
        set(),
    ),
    (
        "secret in exalb's own namespace, where announcers read no Secret",
        {"passwordSecret": {"name": "md5", "namespace": NS}},
        {**BASE_PEER, "passwordSecret": {"name": "md5"}},
        {(NOTE, "spec.passwordSecret")},
    ),
    (
        "secret without namespace: MetalLB's own",
        {"passwordSecret": {"name": "md5"}},
        {**BASE_PEER, "passwordSecret": {"name": "md5"}},
        {(NOTE, "spec.passwordSecret")},
    ),
    ("IPv6 router ID", {"routerID": "2001:db8::1"}, BASE_PEER, {(LOST, "spec.routerID")}),
    ("eBGP multihop", {"ebgpMultiHop": True}, {**BASE_PEER, "ebgpMultiHop": True}, set()),
    ("multihop off", {"ebgpMultiHop": False}, BASE_PEER, set()),
    ("disableMP off", {"disableMP": False, "vrf": ""}, BASE_PEER, set()),
    ("no myASN", {"myASN": 0}, None, {(LOST, "")}),
    ("no peerASN", {"peerASN": None}, None, {(LOST, "")}),
    ("no peerAddress", {"peerAddress": ""}, None, {(LOST, "")}),
    (
        "dynamicASN beside peerASN",
        {"dynamicASN": "internal"},
        BASE_PEER,
        {(LOST, "spec.dynamicASN")},
    ),
    ("a field MetalLB may add", {"futureKnob": 3}, BASE_PEER, {(LOST, "spec.futureKnob")}),
]


@pytest.mark.parametrize(
    ("overrides", "expected", "findings"),
    [c[1:] for c in PEER_CASES],
    ids=[c[0] for c in PEER_CASES],
)
def test_peer_fields(
    overrides: dict[str, Any], expected: dict[str, Any] | None, findings: set[tuple[bool, str]]
) -> None:
    got: list[Finding] = []
    out = migrate_peer(peer(**overrides), NS, f"{NS}-bgp-secrets", {}, got)
    assert (out["spec"] if out else None) == expected
    assert {(f.lost, f.field) for f in got} == findings
    if out:
        assert out["metadata"] == {"name": "p", "namespace": NS}
        assert (out["apiVersion"], out["kind"]) == ("exalb.io/v1alpha1", "BGPPeer")


ALIASES = {"vpn": "1234:1", "big": "large:1:2:3", "odd": "not a community"}
COMMUNITY_CASES = [
    ("65000:100", "65000:100"),
    ("large:64512:1:2", "large:64512:1:2"),
    ("vpn", "1234:1"),
    ("big", "large:1:2:3"),
    ("no-export", "no-export"),
    ("odd", None),
    ("unknown-alias", None),
    ("650000:1", None),
]


@pytest.mark.parametrize(("value", "expected"), COMMUNITY_CASES)
def test_community_resolution(value: str, expected: str | None) -> None:
    assert resolve_community(value, ALIASES) == expected


def test_advertisement_deduplicates_resolved_communities() -> None:
    ad = {"metadata": {"name": "a"}, "spec": {"communities": ["vpn", "1234:1"], "localPref": 0}}
    got: list[Finding] = []
    assert migrate_advertisement(ad, ALIASES, got) == {"communities": ["1234:1"]}
    assert got == []


def pool(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"addresses": ["198.51.100.0/28"], **spec},
    }


def ad(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "BGPAdvertisement",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_advertisements_attach_by_name_label_or_to_all() -> None:
    m = migrate(
        [
            pool("a", {"tier": "x"}),
            pool("b"),
            ad("to-all", localPref=1),
            ad("by-name", ipAddressPools=["b"], localPref=2),
            ad("by-label", ipAddressPoolSelectors=[{"matchLabels": {"tier": "x"}}], localPref=3),
        ],
        NS,
    )
    got = {o["metadata"]["name"]: o["spec"]["bgpAdvertisements"] for o in m.objects}
    # by ad name: by-label, by-name, to-all
    assert got == {
        "a": [{"localPref": 3}, {"localPref": 1}],
        "b": [{"localPref": 2}, {"localPref": 1}],
    }
    assert m.findings == ()


def test_more_advertisements_than_exalb_takes() -> None:
    ads = [ad(f"ad{i:02}", localPref=i) for i in range(18)]
    m = migrate([pool("a"), *ads], NS)
    assert len(m.objects[0]["spec"]["bgpAdvertisements"]) == 16
    (f,) = m.findings
    assert f.lost and "ad16, ad17" in f.reason


def test_pool_priority_below_zero_is_reported() -> None:
    got: list[Finding] = []
    out = migrate_pool(pool("a", serviceAllocation={"priority": -1}), NS, [("x", {})], got)
    assert "serviceAllocation" not in out["spec"]
    assert {(f.lost, f.field) for f in got} == {(LOST, "spec.serviceAllocation.priority")}


def test_duplicates_and_missing_names() -> None:
    m = migrate([pool("a"), pool("a"), {**pool(""), "metadata": {}}, ad("x")], NS)
    assert [o["metadata"]["name"] for o in m.objects] == ["a"]
    assert keys(m.findings) == {
        (LOST, "IPAddressPool/a", ""),
        (LOST, "IPAddressPool/", "metadata.name"),
    }


def test_duplicate_community_alias_keeps_the_first() -> None:
    comm = {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "Community",
        "metadata": {"name": "c"},
        "spec": {"communities": [{"name": "x", "value": "1:1"}, {"name": "x", "value": "2:2"}]},
    }
    m = migrate([comm, pool("a"), ad("use", communities=["x"])], NS)
    assert m.objects[0]["spec"]["bgpAdvertisements"] == [{"communities": ["1:1"]}]
    assert keys(m.findings) == {(LOST, "Community/c", "spec.communities[1]")}


def test_unknown_selector_operator_selects_nothing() -> None:
    bad = ad("bad", ipAddressPoolSelectors=[{"matchExpressions": [{"key": "k", "operator": "Gt"}]}])
    m = migrate([pool("a", {"k": "1"}), bad], NS)
    assert "bgpAdvertisements" not in m.objects[0]["spec"]
    assert keys(m.findings) == {
        (LOST, "BGPAdvertisement/bad", "spec.ipAddressPoolSelectors"),
        (LOST, "IPAddressPool/a", ""),
    }


def test_advertisement_to_a_peer_that_was_not_migrated() -> None:
    m = migrate([pool("a"), ad("x", peers=["gone"])], NS)
    assert keys(m.findings) == {(LOST, "BGPAdvertisement/x", "spec.peers")}


SELECTOR_CASES: list[tuple[dict[str, Any], dict[str, str], bool]] = [
    ({}, {}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    (
        {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
        {"a": "2"},
        True,
    ),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    (
        {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
        {"a": "1"},
        False,
    ),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), SELECTOR_CASES)
def test_selectors(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert matches(selector, labels) is expected


def test_selector_with_unknown_operator() -> None:
    with pytest.raises(SelectorError):
        matches({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, {})


DURATIONS = [
    ("90s", 90.0),
    ("1m30s", 90.0),
    ("1h", 3600.0),
    ("500ms", 0.5),
    ("0", 0.0),
    ("1.5s", 1.5),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "90", "-1s", "1x", "s", "1s2"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (90.0, 0.0, 1.5)] == ["90s", "0s", "1.5s"]

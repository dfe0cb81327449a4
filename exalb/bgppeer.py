"""A BGPPeer as plain data, and the one check of whether its spec can be used.

The announcer refuses a peer whose spec fails here (no session), and the allocator
reports the same failure as the peer's ``Valid`` condition, so both read the spec
through this one function and can never disagree. Pure: the standard library and
the shared selectors only, so both cores may import it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from exalb.assignments.selectors import LabelSelector, SelectorError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
MAX_ASN = 2**32 - 1
DEFAULT_HOLD_TIME = 30
BFD_MIN_INTERVAL_MS = 10
BFD_MAX_INTERVAL_MS = 60_000
PASSWORD_KEY = "password"  # the key of a passwordSecret that holds the TCP MD5 password

# What a spec that cannot be used raises; callers catch exactly these.
SpecError = (ValueError, TypeError, KeyError, SelectorError)


@dataclass(frozen=True)
class Timers:
    """A BGPPeer's ``spec.bfd``: what we ask of the peer and how many misses mean down."""

    min_rx_ms: int = 300
    min_tx_ms: int = 300
    detect_multiplier: int = 3


@dataclass(frozen=True)
class Peer:
    """A BGPPeer: its checked spec, and (in the announcer) its password resolved.

    ``password`` is the inline ``spec.password`` until the announcer resolves
    ``password_secret``; it is never logged. ``problem`` says why the announcer cannot run
    a session with this peer (an invalid spec, a missing Secret).
    """

    name: str
    my_asn: int
    peer_asn: int
    address: str
    port: int = 179
    source_address: str | None = None
    router_id: str | None = None
    hold_time: int = DEFAULT_HOLD_TIME
    connect_time: int | None = None
    password: str | None = field(default=None, repr=False)
    password_secret: str | None = None  # name of the Secret in the BGP secrets namespace
    ebgp_multihop: bool = False
    ttl_security: bool = False
    node_selectors: tuple[LabelSelector, ...] = ()
    graceful_restart: bool = False
    description: str = ""
    bfd: Timers | None = None  # spec.bfd; None: no BFD session
    dual_stack_address_family: bool = False  # MetalLB's name: both families on this session
    problem: str | None = None

    @property
    def ibgp(self) -> bool:
        return self.my_asn == self.peer_asn

    @property
    def version(self) -> int:
        """The IP version of the session itself (of ``address``)."""
        return ipaddress.ip_address(self.address).version

    @property
    def families(self) -> tuple[int, ...]:
        """The IP versions of the Service addresses this session carries, its own first.

        One family per session unless ``dualStackAddressFamily`` asks for both (MP-BGP,
        RFC 4760): then the other family's routes need a next hop of that family, the
        node's address of it, which the decision supplies.
        """
        if self.dual_stack_address_family:
            return (4, 6) if self.version == 4 else (6, 4)
        return (self.version,)

    def session(self) -> Peer:
        """This peer without what only chooses its nodes or runs beside it: the BGP session.

        Two peers with equal sessions need no restart between them, so editing
        ``nodeSelectors`` does not flap the session on nodes that stay selected, and
        retuning BFD retunes the BFD session alone.
        """
        return replace(self, node_selectors=(), bfd=None)


def duration(text: Any) -> float | None:
    """A metav1.Duration string ("30s", "1m30s", "1.5h") in seconds; None if absent."""
    if text is None or text == "":
        return None
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            raise ValueError(f"bad duration {s!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"bad duration {s!r}")
    return total


def _ip(value: Any, what: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an IP address") from None


def _source_address(value: Any, peer_address: str) -> str | None:
    """``sourceAddress``, which must be of the peer's family: a session has one of each end."""
    if not value:
        return None
    source = _ip(value, "sourceAddress")
    if ipaddress.ip_address(source).version != ipaddress.ip_address(peer_address).version:
        raise ValueError(
            f"sourceAddress {source} and peerAddress {peer_address} are of different IP families"
        )
    return source


def _seconds(value: Any) -> int | None:
    d = duration(value)
    return None if d is None else round(d)


def _password_secret(spec: Mapping[str, Any], secrets_namespace: str) -> str | None:
    ref = spec.get("passwordSecret")
    if not ref:
        return None
    if spec.get("password"):
        raise ValueError("password and passwordSecret are mutually exclusive")
    if "namespace" in ref:
        raise ValueError(
            "passwordSecret.namespace is not supported: the Secret must be in the BGP "
            f"secrets namespace {secrets_namespace!r}"
        )
    return str(ref.get("name", ""))


def bfd_timers(spec: Any) -> Timers | None:
    """``spec.bfd``: None when absent or disabled, ValueError when unusable."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValueError("bfd must be an object")
    if not spec.get("enabled", True):
        return None
    defaults = Timers()
    rx = int(spec.get("minReceiveInterval", defaults.min_rx_ms))
    tx = int(spec.get("minTransmitInterval", defaults.min_tx_ms))
    mult = int(spec.get("detectMultiplier", defaults.detect_multiplier))
    for name, value in (("minReceiveInterval", rx), ("minTransmitInterval", tx)):
        if not BFD_MIN_INTERVAL_MS <= value <= BFD_MAX_INTERVAL_MS:
            raise ValueError(
                f"bfd.{name} {value} is outside {BFD_MIN_INTERVAL_MS}..{BFD_MAX_INTERVAL_MS} ms"
            )
    if not 2 <= mult <= 255:
        raise ValueError(f"bfd.detectMultiplier {mult} is outside 2..255")
    return Timers(min_rx_ms=rx, min_tx_ms=tx, detect_multiplier=mult)


def parse_spec(spec: Mapping[str, Any], secrets_namespace: str, name: str = "") -> Peer:
    """BGPPeer ``name``'s spec; raises one of :data:`SpecError` with the reason.

    ``secrets_namespace`` is where its ``passwordSecret`` must be (the BGP secrets namespace).
    """
    my_asn, peer_asn = int(spec["myASN"]), int(spec["peerASN"])
    if not (0 < my_asn <= MAX_ASN and 0 < peer_asn <= MAX_ASN):
        raise ValueError(f"myASN and peerASN must be in 1..{MAX_ASN}")
    hold = _seconds(spec.get("holdTime"))
    hold_s = DEFAULT_HOLD_TIME if hold is None else hold
    if hold_s != 0 and hold_s < 3:
        raise ValueError("holdTime must be 0 or at least 3s")
    router_id = spec.get("routerID")
    address = _ip(spec["peerAddress"], "peerAddress")
    return Peer(
        name=name,
        my_asn=my_asn,
        peer_asn=peer_asn,
        address=address,
        port=int(spec.get("peerPort") or 179),
        source_address=_source_address(spec.get("sourceAddress"), address),
        router_id=_ip(router_id, "routerID") if router_id else None,
        hold_time=hold_s,
        connect_time=_seconds(spec.get("connectTime")),
        password=spec.get("password") or None,
        password_secret=_password_secret(spec, secrets_namespace),
        ebgp_multihop=bool(spec.get("ebgpMultiHop", False)),
        ttl_security=bool(spec.get("ttlSecurity", False)),
        node_selectors=tuple(LabelSelector.parse(s) for s in spec.get("nodeSelectors") or []),
        graceful_restart=bool(spec.get("enableGracefulRestart", False)),
        description=str(spec.get("description", "")),
        bfd=bfd_timers(spec.get("bfd")),
        dual_stack_address_family=bool(spec.get("dualStackAddressFamily", False)),
    )

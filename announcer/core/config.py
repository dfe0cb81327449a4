"""ExaBGP's configuration for one peer: the session, never the routes it will change.

One ExaBGP process runs per peer, so a peer added, changed or removed starts,
restarts or stops only that peer's process, and a Service change is only ever
an API command: nothing reloads (MetalLB #1944 was FRR reloads flapping every
session on each Service change).

``seed`` routes are written into the file only when a process starts: ExaBGP
loads static routes far faster than its API accepts them (bench/ANNOUNCER.md),
which is what makes a cold start or a post-crash replay of thousands of prefixes
fast. With ``grouped`` they are written as ``attributes ... nlri ...`` lines, one
per attribute set and 500 prefixes, which only an ExaBGP whose launcher reported
that fix announces (see ``exabgp.launcher``). Those routes are then ordinary RIB
entries that later API withdraws remove; the file is never reloaded.

The MD5 password goes in base64 (no quoting pitfalls) into a file of mode 0600
in a private directory; it is never logged.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Mapping, Sequence

from exalb.bgppeer import Peer

from .diff import attributes, batches, group
from .model import Attrs

API_PROCESS = "exalb"


def _families(peer: Peer) -> str:
    """ExaBGP's ``family`` block: the session's own family, and the other with MP-BGP."""
    return " ".join(f"ipv{v} unicast;" for v in peer.families)


def render(
    peer: Peer,
    local_address: str,
    router_id: str,
    bridge: Sequence[str],
    seed: Mapping[str, Attrs] | None = None,
    grouped: bool = False,
) -> str:
    """The whole config file for ``peer``; ``bridge`` is the API process argv."""
    lines = [
        f"process {API_PROCESS} {{",
        f"  run {shlex.join(bridge)};",
        "  encoder json;",
        "}",
        "",
        f"neighbor {peer.address} {{",
    ]
    if peer.description:
        lines.append(f"  description {json.dumps(peer.description)};")
    lines += [
        f"  router-id {router_id};",
        f"  local-address {local_address};",
        f"  local-as {peer.my_asn};",
        f"  peer-as {peer.peer_asn};",
        f"  connect {peer.port};",
        f"  hold-time {peer.hold_time};",
        "  adj-rib-in false;",
        "  group-updates true;",
    ]
    if peer.password:
        encoded = base64.b64encode(peer.password.encode()).decode()
        lines += [f"  md5-password {encoded};", "  md5-base64 true;"]
    if peer.ttl_security:
        # GTSM (RFC 5082): send with TTL 255 and accept only TTL 255 from a direct neighbour.
        lines += ["  outgoing-ttl 255;", "  incoming-ttl 255;"]
    elif peer.ebgp_multihop:
        lines.append("  outgoing-ttl 255;")
    if peer.graceful_restart:
        restart = max(1, min(peer.hold_time or 120, 4095))
        lines += ["  capability {", f"    graceful-restart {restart};", "  }"]
    lines += [
        f"  family {{ {_families(peer)} }}",
        "  api {",
        f"    processes [ {API_PROCESS} ];",
        "    neighbor-changes;",
        "    negotiated;",
        "    send { packets; update; notification; }",
        "    receive { parsed; update; notification; }",
        "  }",
    ]
    if seed and grouped:
        lines.append("  static {")
        for attrs, chunk in batches(group(seed)):
            lines.append(f"    attributes {attributes(attrs)} nlri {' '.join(chunk)};")
        lines.append("  }")
    elif seed:
        lines.append("  static {")
        for prefix in sorted(seed):
            lines.append(f"    route {prefix} {attributes(seed[prefix])};")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"

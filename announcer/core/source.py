"""Where this node's session with a peer starts from, and the BGP identifier it sends.

A dual-stack node has an InternalIP of each family; a session can only start from
an address of the peer's own family, so an IPv6 peer gets the node's IPv6 address
even when the announcer's ``--source-address`` (a default for every peer) is IPv4.
"""

from __future__ import annotations

import ipaddress

from exalb.bgppeer import Peer

from .model import Node, Options

SOURCE_ADDRESS_TYPE = "InternalIP"
NO_IPV4_ROUTER_ID = "0.0.0.1"  # a node with no IPv4 address at all: any non-zero identifier


def _version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def _internal_ip(node: Node | None, version: int) -> str | None:
    if node is None:
        return None
    return next(
        (a for t, a in node.addresses if t == SOURCE_ADDRESS_TYPE and _version(a) == version),
        None,
    )


def source_address(peer: Peer, node: Node | None, opts: Options) -> str | None:
    """The peer's ``sourceAddress``, else ``--source-address``, else the node's InternalIP,
    whichever first is of the peer's family; None when the node has none."""
    for candidate in (peer.source_address, opts.source_address):
        if candidate and _version(candidate) == peer.version:
            return candidate
    return _internal_ip(node, peer.version)


def router_id(peer: Peer, node: Node | None, opts: Options, source: str) -> str:
    """The BGP identifier (RFC 4271: 32 bits, so IPv4-shaped).

    The peer's ``routerID``, else ``--router-id``, else the IPv4 source address, else
    (an IPv6 session) the node's IPv4 InternalIP, so both of a dual-stack node's
    sessions carry the same identifier.
    """
    chosen = peer.router_id or opts.router_id
    if chosen:
        return chosen
    if _version(source) == 4:
        return source
    return _internal_ip(node, 4) or NO_IPV4_ROUTER_ID

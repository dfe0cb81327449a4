"""The real-node bed's IPv6 half: every link, the router and each node's pods are dual-stack.

Every address is in the documentation range 2001:db8::/32, inside the bed's own
namespaces (<k> is the link number of ``testbed.nodes``, <i> the node's, in hex):

| what                               | namespace          | address                          |
| ---------------------------------- | ------------------ | -------------------------------- |
| router end of link k               | exalb-<id>-router  | 2001:db8:200:<k>::1/64           |
| far end of link k (node i: its IP) | the part's         | 2001:db8:200:<k>::2/64           |
| client, link k=15                  | exalb-<id>-client  | 2001:db8:200:f::2/64             |
| router's BGP address (every node)  | exalb-<id>-router  | 2001:db8:255::1/128 on lo        |
| pods of node i (bridge cni0)       | exalb-<id>-node<i> | 2001:db8:100:<i>::/64, gateway ::1 |
| Services                           | -                  | 2001:db8:19::/112                |

The router accepts BGP sessions on 2001:db8:255::1 from any address of
2001:db8:200::/56, in the same peer group as the IPv4 ones, with both address
families active for every neighbor: a node may run one session per family,
or carry both families on one (``dualStackAddressFamily``).
"""

from __future__ import annotations

from . import netns

ROUTER_ADDRESS_V6 = "2001:db8:255::1"
LINKS_V6 = "2001:db8:200::/56"
PODS_V6 = "2001:db8:100::/56"
SERVICE_CIDR_V6 = "2001:db8:19::/112"


def router_end_v6(k: int) -> str:
    return f"2001:db8:200:{k:x}::1"


def far_end_v6(k: int) -> str:
    return f"2001:db8:200:{k:x}::2"


def pod_cidr_v6(i: int) -> str:
    return f"2001:db8:100:{i:x}::/64"


def add_link_addresses(router: str, router_link: str, far_ns: str, k: int) -> None:
    """Link k's IPv6 addresses and the far end's default route.

    ``nodad``: a veth has exactly two ends, so duplicate address detection would
    only hold each address back (tentative, unusable) for a second or more.
    """
    netns.ip("-n", router, "addr", "add", f"{router_end_v6(k)}/64", "dev", router_link, "nodad")
    add_far_end(far_ns, k)


def add_far_end(far_ns: str, k: int) -> None:
    """The far end's address and default route: what its kernel drops when the link goes down."""
    netns.ip("-n", far_ns, "addr", "add", f"{far_end_v6(k)}/64", "dev", "eth0", "nodad")
    netns.ip("-n", far_ns, "-6", "route", "add", "default", "via", router_end_v6(k))


def add_router_address(router: str) -> None:
    netns.ip("-n", router, "addr", "add", f"{ROUTER_ADDRESS_V6}/128", "dev", "lo")


def route_node_pods(router: str, node: str, i: int) -> None:
    """Node i forwards its pods' IPv6 traffic; the router sends their range to it."""
    netns.sysctl(node, "net.ipv6.conf.all.forwarding", "1")
    netns.ip("-n", router, "-6", "route", "add", pod_cidr_v6(i), "via", far_end_v6(i))

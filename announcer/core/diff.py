"""Desired routes minus what ExaBGP already has, as the fewest API commands.

Prefixes whose attributes are equal go in one ``announce attributes ... nlri
...`` line (ExaBGP then packs them into few UPDATEs); withdrawals are sent
first so that a shutdown or a mass withdraw is never delayed by announces.
Each command records the change it makes, so the writer can apply it to its
view of ExaBGP's RIB when ExaBGP acknowledges it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .model import Attrs

BATCH = 500  # NLRI per command line: well under ExaBGP's 1 MiB line cap
# Withdraws every route ExaBGP holds for its peers (one ExaBGP runs per peer), with no
# prefix to parse: the bulk path for a shutdown, a fraction of the work of listing them.
WITHDRAW_ALL = "clear adj-rib out"


@dataclass(frozen=True)
class Command:
    line: str
    changes: tuple[tuple[str, Attrs | None], ...]  # prefix -> new attrs (None = withdrawn)


def diff(
    desired: Mapping[str, Attrs], current: Mapping[str, Attrs]
) -> tuple[dict[Attrs, list[str]], dict[str, list[str]]]:
    """(announce: attrs -> prefixes, withdraw: next hop -> prefixes), both sorted."""
    changed = {
        prefix: attrs
        for prefix, attrs in desired.items()
        # identity first: decide() interns Attrs
        if (have := current.get(prefix)) is not attrs and have != attrs
    }
    withdraw: dict[str, list[str]] = defaultdict(list)
    for prefix, attrs in current.items():
        if prefix not in desired:
            withdraw[attrs.next_hop].append(prefix)
    for v in withdraw.values():
        v.sort()
    return group(changed), dict(withdraw)


def attributes(a: Attrs) -> str:
    """The ExaBGP text for ``a`` (local-pref only reaches iBGP peers; decide() clears it).

    An ``as-path`` is sent as written; without one, ExaBGP sends its own ASN on eBGP.
    """
    parts = [f"next-hop {a.next_hop}"]
    if a.communities:
        parts.append(f"community [{' '.join(a.communities)}]")
    if a.large_communities:
        parts.append(f"large-community [{' '.join(a.large_communities)}]")
    if a.local_pref is not None:
        parts.append(f"local-preference {a.local_pref}")
    if a.med is not None:
        parts.append(f"med {a.med}")
    if a.as_path:
        parts.append(f"as-path [{' '.join(str(asn) for asn in a.as_path)}]")
    if a.link_bandwidth is not None:
        asn, rate = a.link_bandwidth
        parts.append(f"extended-community [bandwidth:{asn}:{rate}]")
    return " ".join(parts)


def _order(a: Attrs) -> tuple[object, ...]:
    return (
        a.next_hop,
        a.communities,
        a.large_communities,
        -1 if a.local_pref is None else a.local_pref,
        -1 if a.med is None else a.med,
        a.as_path,
        a.link_bandwidth or (-1, -1),
    )


def commands(
    desired: Mapping[str, Attrs], current: Mapping[str, Attrs], batch: int = BATCH
) -> list[Command]:
    announce, withdraw = diff(desired, current)
    out: list[Command] = []
    for nh, prefixes in sorted(withdraw.items()):
        out += [
            Command(
                f"withdraw attributes next-hop {nh} nlri {' '.join(chunk)}",
                tuple((p, None) for p in chunk),
            )
            for chunk in _chunks(prefixes, batch)
        ]
    for attrs, chunk in batches(announce, batch):
        out.append(
            Command(
                f"announce attributes {attributes(attrs)} nlri {' '.join(chunk)}",
                tuple((p, attrs) for p in chunk),
            )
        )
    return out


def withdraw_all(current: Mapping[str, Attrs]) -> Command:
    """One command that withdraws every route in ``current``, which must be all ExaBGP holds."""
    return Command(WITHDRAW_ALL, tuple((p, None) for p in sorted(current)))


def group(routes: Mapping[str, Attrs]) -> dict[Attrs, list[str]]:
    """Prefixes by their attributes, each list sorted."""
    out: dict[Attrs, list[str]] = defaultdict(list)
    for prefix, attrs in routes.items():
        out[attrs].append(prefix)
    for v in out.values():
        v.sort()
    return dict(out)


def batches(
    by_attrs: Mapping[Attrs, Sequence[str]], batch: int = BATCH
) -> list[tuple[Attrs, Sequence[str]]]:
    """(attributes, up to ``batch`` prefixes) in a stable order: one ExaBGP line each."""
    return [
        (attrs, chunk)
        for attrs, prefixes in sorted(by_attrs.items(), key=lambda kv: _order(kv[0]))
        for chunk in _chunks(prefixes, batch)
    ]


def _chunks(prefixes: Sequence[str], size: int) -> list[Sequence[str]]:
    """Batches of at most ``size`` prefixes: one ExaBGP command (and UPDATE group) each."""
    return [prefixes[i : i + size] for i in range(0, len(prefixes), size)]

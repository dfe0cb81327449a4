"""Holding back an address the allocator has just assigned, until kube-proxy has it.

The allocator writes the Service's status, then publishes the assignment; the
announcer reads the assignment within milliseconds, but kube-proxy on the same
node programs the address only at its next sync (``--iptables-min-sync-period``
is 1 s by default, and a sync takes longer on a big or busy node). Announced in
between, the address draws traffic to a node that does not translate it yet: the
node sends each packet back by its default route, the router sends it to the node
again, and the packets circle until their TTL runs out (ICMP time exceeded at the
client, bench/TRAFFIC.md). So an address this announcer sees appear is announced
only ``hold`` seconds later.

"Appear" means: not in the Service's entry when this announcer last read it. The
entries of the first read are old by definition: a restarted announcer (a rolling
upgrade) finds addresses that kube-proxy has had for long, and must announce them
at once. A Service whose entry leaves and comes back is new again, as is a second
address (dual stack) added to an existing Service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

OLD = float("-inf")  # first seen in the first read: never held


class NewAddresses:
    """When each address of each Service was first seen; the reconciler is its only user."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self._seen: dict[str, dict[str, float]] = {}  # assignment key -> address -> first seen
        self._pending: set[str] = set()  # keys with an address still held at the last look

    def start(self, entries: Mapping[str, Iterable[str]]) -> None:
        """The first read: every address already published is old."""
        if self.hold <= 0:  # nothing is ever held: keep no books
            return
        self._seen = {key: dict.fromkeys(ips, OLD) for key, ips in entries.items()}
        self._pending.clear()

    def saw_all(self, entries: Mapping[str, Iterable[str]], now: float) -> None:
        """A full read: every entry as read now; a key not in ``entries`` has none any more."""
        for key in [k for k in self._seen if k not in entries]:
            self.saw(key, None, now)
        for key, ips in entries.items():
            self.saw(key, ips, now)

    def held_all(self, now: float) -> dict[str, frozenset[str]]:
        """Every Service with an address held now, and those addresses."""
        return {key: ips for key in self._pending if (ips := self.held(key, now))}

    def saw(self, key: str, ips: Iterable[str] | None, now: float) -> None:
        """``key``'s entry as read now (None: it has none any more)."""
        if self.hold <= 0:
            return
        if ips is None:
            self._seen.pop(key, None)
            self._pending.discard(key)
            return
        before = self._seen.get(key, {})
        self._seen[key] = {ip: before.get(ip, now) for ip in ips}
        if self.held(key, now):
            self._pending.add(key)

    def held(self, key: str, now: float) -> frozenset[str]:
        """``key``'s addresses that must not be announced yet."""
        if self.hold <= 0:
            return frozenset()
        seen = self._seen.get(key, {})
        return frozenset(ip for ip, at in seen.items() if now < at + self.hold)

    def until(self, key: str) -> float | None:
        """When ``key``'s last held address may be announced, or None if none is held."""
        times = [at + self.hold for at in self._seen.get(key, {}).values() if at != OLD]
        return max(times, default=None) if self.hold > 0 else None

    def released(self, now: float) -> set[str]:
        """The Services whose hold ended since the last call: decide them again."""
        done = {key for key in self._pending if not self.held(key, now)}
        self._pending -= done
        return done

    def next_release(self, now: float) -> float | None:
        """When the next held address may be announced: the caller re-decides then."""
        times = [
            at + self.hold
            for key in self._pending
            for at in self._seen.get(key, {}).values()
            if at + self.hold > now
        ]
        return min(times, default=None)

"""The desired routes per peer, kept up to date one Service at a time.

Recomputing every Service on every change made a readiness flip wait for the
whole cluster's decisions at 10,000 Services (bench/ANNOUNCER.md). Here a
change to one Service's assignment or endpoints re-decides that Service only,
and the result says which prefixes of which peer changed, so the writer sends
just those. A change to the :class:`Context` (node, peers, flags) still
re-decides everything: it touches every route anyway.

It stays level-triggered: the caller hands in the *current* inputs of each
Service it was told about (never a delta), and ``rebuild`` from a full read
gives the same state as any sequence of updates (a property test checks it).

Several Services may announce one prefix (shared IPs, aggregates); each
prefix remembers every Service's contribution and announces their union, so
removing one Service leaves the others' attributes exactly as ``decide()``
would compute them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from exalb.assignments import Assignment

from .datapath import CheckState
from .decide import Context, ServiceDecision, decide_service, merge_all, service_id
from .model import Attrs, Endpoint, Routes
from .pools import Refusal

Touched = dict[str, set[str]]  # peer name -> prefixes whose desired attributes may have changed


class DesiredState:
    """Desired routes per peer, reasons per Service, and which Services are announced."""

    def __init__(self) -> None:
        self.ctx: Context | None = None
        self.routes: dict[str, Routes] = {}
        self.reasons: dict[str, str] = {}  # assignment key -> why it is not (fully) announced
        self.announced: set[str] = set()  # assignment keys with at least one route
        self.refused: dict[str, tuple[Refusal, ...]] = {}  # assignment key -> unjustified prefixes
        self._decisions: dict[str, ServiceDecision] = {}  # assignment key -> its decision
        # peer -> prefix -> assignment key -> that Service's attributes for the prefix
        self._contrib: dict[str, dict[str, dict[str, Attrs]]] = {}

    def __len__(self) -> int:
        """How many Services (assignments) are decided."""
        return len(self._decisions)

    def rebuild(
        self,
        ctx: Context,
        assignments: Iterable[Assignment],
        endpoints: Mapping[str, Sequence[Endpoint]],
        checks: Mapping[str, CheckState] | None = None,
        held: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        """Everything from scratch, e.g. after a context change or on the first pass.

        ``checks``: data path probe states by assignment key (``core.datapath``);
        ``held``: addresses not to announce yet, by assignment key (``core.newaddresses``)."""
        self.ctx = ctx
        self.routes = {name: {} for name in ctx.peer_names}
        self._contrib = {name: {} for name in ctx.peer_names}
        self.reasons = {}
        self.announced = set()
        self.refused = {}
        self._decisions = {}
        for a in assignments:
            check = (checks or {}).get(a.key)
            hold = (held or {}).get(a.key, frozenset())
            self._add(a.key, decide_service(ctx, a, endpoints.get(service_id(a)), check, hold))
        for peer, prefixes in self._contrib.items():
            routes = self.routes[peer]
            for prefix, by_service in prefixes.items():
                routes[prefix] = merge_all(by_service.values())

    def update(
        self,
        key: str,
        assignment: Assignment | None,
        endpoints: Sequence[Endpoint] | None,
        check: CheckState | None = None,
        held: frozenset[str] = frozenset(),
    ) -> Touched:
        """Re-decide the Service stored under assignment key ``key`` from its current inputs.

        ``assignment`` None means it has no assignment (any more). Returns the
        prefixes whose desired attributes may have changed, per peer.
        """
        if self.ctx is None:
            raise RuntimeError("rebuild() first")
        old = self._decisions.get(key)
        new = (
            None
            if assignment is None
            else decide_service(self.ctx, assignment, endpoints, check, held)
        )
        if old == new:
            return {}
        touched: Touched = {}
        if old is not None:
            self._remove(key, old, touched)
        if new is not None:
            self._add(key, new, touched)
        for peer, prefixes in touched.items():
            routes, contrib = self.routes[peer], self._contrib[peer]
            for prefix in prefixes:
                by_service = contrib.get(prefix)
                if by_service:
                    routes[prefix] = merge_all(by_service.values())
                else:
                    routes.pop(prefix, None)
        return touched

    def _add(self, key: str, d: ServiceDecision, touched: Touched | None = None) -> None:
        self._decisions[key] = d
        if d.reason is not None:
            self.reasons[key] = d.reason
        if d.routes:
            self.announced.add(key)
        if d.refused:
            self.refused[key] = d.refused
        for peer, routes in d.routes.items():
            contrib = self._contrib[peer]
            for prefix, attrs in routes.items():
                contrib.setdefault(prefix, {})[key] = attrs
            if touched is not None:
                touched.setdefault(peer, set()).update(routes)

    def _remove(self, key: str, d: ServiceDecision, touched: Touched) -> None:
        del self._decisions[key]
        self.reasons.pop(key, None)
        self.announced.discard(key)
        self.refused.pop(key, None)
        for peer, routes in d.routes.items():
            contrib = self._contrib[peer]
            for prefix in routes:
                by_service = contrib.get(prefix)
                if by_service is not None:
                    by_service.pop(key, None)
                    if not by_service:
                        del contrib[prefix]
            touched.setdefault(peer, set()).update(routes)

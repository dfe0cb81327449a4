"""What the allocator has published, shard by shard, and which Services a shard change moved.

The announcer re-reads only the ConfigMap shard that changed and decodes only
the entries whose text changed, so one Service's new assignment costs
microseconds instead of decoding 10,000 entries.

Someone else's mistake never withdraws a route. A shard that is *stale* keeps
its last good entries, and the reader is told (to log and export it):

- a shard it cannot read (a newer schema, no schema key);
- a shard of the layout (named ``<prefix>-<i>``) that was read once and is now
  missing. The allocator never deletes a shard (their number only grows), so a
  missing one was deleted by someone else; when the allocator writes it again,
  its entries are taken as they come, and a Service that stayed is never
  withdrawn in between, whichever shard comes back first.

Live shards take precedence over stale ones, so a Service the allocator has
already republished is read from where it is now. A Service deleted while its
shard is missing stays announced until that shard is back (the price of never
trusting an absence).

While the allocator moves an entry between shards (the shard count changed),
a key can briefly sit in two shards; the first shard by name wins, and any
copy is as good as the other because the allocator wrote both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from exalb.assignments import SCHEMA_KEY, Assignment, ContractError, check_schema, decode

# entry key -> (its raw text, the decoded entry or why it was skipped)
_Cache = dict[str, tuple[str, Assignment | str]]
_LAYOUT_NAME = re.compile(r".+-[0-9]+")  # <prefix>-<shard index>


class Published:
    """The union of every assignment shard, kept per shard."""

    def __init__(self) -> None:
        self._shards: dict[str, _Cache] = {}
        self._bad: dict[str, set[str]] = {}  # shard -> keys it holds that did not decode
        self._stale: dict[str, str] = {}  # shard -> why its last good entries are kept
        self._order: list[str] = []  # shards to look a key up in: live by name, then stale

    def replace(self, shard: str, data: Mapping[str, str] | None) -> set[str]:
        """Take ``shard``'s current data (None: it is gone); returns the keys it changed.

        An unreadable shard, or a missing one of the layout, becomes stale
        (:meth:`stale`) and its previous entries stay in force.
        """
        if data is None:
            if shard in self._shards and _LAYOUT_NAME.fullmatch(shard):
                return self._mark_stale(shard, "deleted; the allocator has not written it again")
            self._stale.pop(shard, None)
            self._bad.pop(shard, None)
            old = self._shards.pop(shard, {})
            self._reorder()
            return self._changed(old, {})
        try:
            check_schema(data)
        except ContractError as exc:
            return self._mark_stale(shard, f"unreadable: {exc}")
        old = self._shards.get(shard, {})
        new: _Cache = {}
        for key, raw in data.items():
            if key == SCHEMA_KEY:
                continue
            cached = old.get(key)
            if cached is not None and cached[0] == raw:
                new[key] = cached
            else:
                new[key] = (raw, _decode(key, raw))
        self._shards[shard] = new
        self._bad[shard] = {k for k, (_, v) in new.items() if isinstance(v, str)}
        self._stale.pop(shard, None)
        self._reorder()
        return self._changed(old, new)

    def stale(self) -> dict[str, str]:
        """Shards whose last good entries are kept, and why."""
        return dict(self._stale)

    def get(self, key: str) -> Assignment | None:
        for name in self._order:
            hit = self._shards[name].get(key)
            if hit is not None and isinstance(hit[1], Assignment):
                return hit[1]
        return None

    def entries(self) -> dict[str, Assignment]:
        out: dict[str, Assignment] = {}
        for name in reversed(self._order):  # the first shard wins: it is applied last
            out.update((k, v) for k, (_, v) in self._shards[name].items() if not isinstance(v, str))
        return out

    def errors(self) -> dict[str, str]:
        """Entries skipped, and why; an entry good in another shard is not an error."""
        out: dict[str, str] = {}
        for shard, keys in self._bad.items():
            for k in keys:
                reason = self._shards[shard][k][1]
                if isinstance(reason, str) and self.get(k) is None:
                    out[k] = reason
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._shards.keys() | self._stale.keys()))

    def _reorder(self) -> None:
        """Live shards by name, then stale ones: the API's word over what we remember."""
        self._order = sorted(self._shards, key=lambda name: (name in self._stale, name))

    def _mark_stale(self, shard: str, why: str) -> set[str]:
        """Keep ``shard``'s entries, now behind every live shard; the keys whose winner changed."""
        if self._stale.get(shard) == why:
            return set()
        keys = self._shards.get(shard, {}).keys()
        before = {k: self.get(k) for k in keys}
        self._stale[shard] = why
        self._reorder()
        return {k for k in keys if self.get(k) != before[k]}

    @staticmethod
    def _changed(old: _Cache, new: _Cache) -> set[str]:
        return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def _decode(key: str, raw: str) -> Assignment | str:
    try:
        return decode(key, raw)
    except ContractError as exc:
        return str(exc)

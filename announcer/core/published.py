"""What the allocator has published, shard by shard, and which Services a shard change moved.

The announcer re-reads only the ConfigMap shard that changed and decodes only
the entries whose text changed, so one Service's new assignment costs
microseconds instead of decoding 10,000 entries. A shard it cannot read (a
newer schema, no schema key) keeps its last good entries: someone else's
mistake never withdraws a route (the reader is told, to log and export it).

While the allocator moves an entry between shards (the shard count changed),
a key can briefly sit in two shards; the first shard by name wins, and any
copy is as good as the other because the allocator wrote both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from exalb.assignments import SCHEMA_KEY, Assignment, ContractError, check_schema, decode_entry

# entry key -> (its raw text, the decoded entry or why it was skipped)
_Cache = dict[str, tuple[str, Assignment | str]]


class Published:
    """The union of every assignment shard, kept per shard."""

    def __init__(self) -> None:
        self._shards: dict[str, _Cache] = {}
        self._bad: dict[str, set[str]] = {}  # shard -> keys it holds that did not decode

    def replace(self, shard: str, data: Mapping[str, str] | None) -> set[str]:
        """Take ``shard``'s current data (None: it was deleted); returns the keys it changed.

        Raises :class:`ContractError` if the shard as a whole is unreadable; the
        shard's previous entries then stay in force.
        """
        old = self._shards.get(shard, {})
        if data is None:
            self._shards.pop(shard, None)
            self._bad.pop(shard, None)
            return self._changed(old, {})
        check_schema(data)
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
        return self._changed(old, new)

    def get(self, key: str) -> Assignment | None:
        for name in sorted(self._shards):
            hit = self._shards[name].get(key)
            if hit is not None and isinstance(hit[1], Assignment):
                return hit[1]
        return None

    def entries(self) -> dict[str, Assignment]:
        out: dict[str, Assignment] = {}
        for name in sorted(self._shards, reverse=True):  # first shard by name wins
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
        return iter(sorted(self._shards))

    @staticmethod
    def _changed(old: _Cache, new: _Cache) -> set[str]:
        return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def _decode(key: str, raw: str) -> Assignment | str:
    try:
        return decode_entry(key, raw)
    except ContractError as exc:
        return str(exc)

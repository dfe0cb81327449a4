"""Encoding assignments into ConfigMap shards and decoding them back.

Layout (documented in docs/assignments-contract.md):
- ConfigMaps named ``<prefix>-<i>`` for ``i`` in ``0..S-1``, labelled
  ``exalb.io/assignments=true``, in the allocator's namespace; readers list by
  that label, so they never need to know S in advance.
- Each shard's ``data`` holds ``schemaVersion`` and one key per Service,
  ``<namespace>.<name>``, whose value is the compact JSON of one entry. From
  schema 2 the entry does not repeat the key's namespace and name, and leaves
  out fields at their defaults.
- A Service lives in shard ``crc32(key) % S``. S is a power of two chosen so
  that no shard exceeds :data:`SHARD_BUDGET` bytes, and it only grows, so a
  Service moves only when S doubles (to ``i`` or ``i + S``). The budget is
  small because one change rewrites its whole shard, and every announcer
  receives and reads that shard again.
- The writer adds before it removes; a reader takes the union of all shards,
  so a Service mid-move is seen twice (identically), never zero times.
- Readers read every schema up to :data:`SCHEMA_VERSION`: a shard an older
  allocator wrote is read as it is.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .addresses import AddressError, parse_ip
from .model import (
    CLUSTER,
    SCHEMA_VERSION,
    Advertisement,
    Assignment,
    DataPathCheck,
    DataPathTarget,
    Degraded,
    entry_key,
)
from .selectors import LabelSelector, SelectorError

LABEL = "exalb.io/assignments"
SCHEMA_KEY = "schemaVersion"
SHARD_BUDGET = 16 * 1024  # bytes of data per ConfigMap: what one change makes every node re-read


class ContractError(ValueError):
    """An entry or shard that does not follow the contract."""


class NewerSchema(ContractError):
    """A shard written by a newer allocator than this reader understands."""


# --- one entry --------------------------------------------------------------
_DEFAULT_ADVERTISEMENTS = (Advertisement(),)


def encode(a: Assignment) -> str:
    """Schema 2: the Service is named by the entry's key, and defaults are left out."""
    doc: dict[str, Any] = {"uid": a.uid, "ips": list(a.ips), "pool": a.pool}
    if a.traffic_policy != CLUSTER:
        doc["trafficPolicy"] = a.traffic_policy
    if a.advertisements != _DEFAULT_ADVERTISEMENTS:
        doc["advertisements"] = [_adv_json(x) for x in a.advertisements]
    if a.data_path is not None:
        doc["dataPath"] = _target_json(a.data_path)
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def _adv_json(x: Advertisement) -> dict[str, Any]:
    out: dict[str, Any] = {"aggregationLength": x.aggregation_length}
    if x.aggregation_length_v6 != 128:
        out["aggregationLengthV6"] = x.aggregation_length_v6
    if x.communities:
        out["communities"] = list(x.communities)
    if x.large_communities:
        out["largeCommunities"] = list(x.large_communities)
    if x.local_pref is not None:
        out["localPref"] = x.local_pref
    if x.med is not None:
        out["med"] = x.med
    if x.peers:
        out["peers"] = list(x.peers)
    if x.node_selectors:
        out["nodeSelectors"] = [s.to_json() for s in x.node_selectors]
    if x.degraded is not None:
        out["degraded"] = _degraded_json(x.degraded)
    if x.mbps_per_endpoint is not None:
        out["mbpsPerEndpoint"] = x.mbps_per_endpoint
    if x.data_path_check is not None:
        port = x.data_path_check.port
        out["dataPathCheck"] = {} if port is None else {"port": port}
    return out


def _target_json(t: DataPathTarget) -> dict[str, Any]:
    if t.problem:
        return {"problem": t.problem}
    return {"address": t.address, "port": t.port}


def _degraded_json(d: Degraded) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if d.local_pref is not None:
        out["localPref"] = d.local_pref
    if d.med is not None:
        out["med"] = d.med
    if d.as_path_prepend:
        out["asPathPrepend"] = d.as_path_prepend
    if d.communities:
        out["communities"] = list(d.communities)
    if d.large_communities:
        out["largeCommunities"] = list(d.large_communities)
    if d.node_selectors:
        out["nodeSelectors"] = [s.to_json() for s in d.node_selectors]
    return out


def decode(key: str, raw: str) -> Assignment:
    """The entry stored under ``key``; raises :class:`ContractError` if it is malformed.

    Reads both schemas: a schema 1 entry also names its Service, which must be the
    key's (else it is misfiled); a schema 2 entry is named by its key alone.
    """
    namespace, dot, name = key.partition(".")
    if not (namespace and dot and name) or "." in name:
        raise ContractError(f"key {key!r} is not <namespace>.<name>")
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ContractError("entry is not a JSON object")
        named = entry_key(str(doc.get("namespace", namespace)), str(doc.get("name", name)))
        if named != key:
            raise ContractError(f"entry names {named!r} but is stored under {key!r}")
        ips = doc["ips"]
        if not isinstance(ips, list) or not ips or not all(isinstance(i, str) for i in ips):
            raise ContractError("ips must be a non-empty list of strings")
        policy = doc.get("trafficPolicy", "Cluster")
        if policy not in ("Cluster", "Local"):
            raise ContractError(f"trafficPolicy {policy!r} is not Cluster or Local")
        advs = tuple(_adv(x) for x in doc.get("advertisements") or [{}])
        target = doc.get("dataPath")
        return Assignment(
            namespace=namespace,
            name=name,
            uid=str(doc["uid"]),
            ips=tuple(ips),
            pool=str(doc["pool"]),
            traffic_policy=policy,
            advertisements=advs,
            data_path=None if target is None else _target_parse(target),
        )
    except ContractError:
        raise
    except (ValueError, KeyError, TypeError, SelectorError) as exc:
        raise ContractError(f"malformed entry: {exc}") from exc


def _adv(x: Any) -> Advertisement:
    if not isinstance(x, dict):
        raise ContractError("advertisement is not an object")
    # Services of one pool share their advertisements: each is decoded once and the
    # object shared, so a pool's thousands of entries hold one copy.
    return _adv_cached(repr(x), x)


def _adv_cached(key: str, x: dict[str, Any]) -> Advertisement:
    hit = _ADV_CACHE.get(key)
    if hit is None:
        hit = _adv_parse(x)
        if len(_ADV_CACHE) >= _ADV_CACHE_SIZE:
            _ADV_CACHE.clear()  # distinct advertisements are few; this bounds a pathological case
        _ADV_CACHE[key] = hit
    return hit


_ADV_CACHE: dict[str, Advertisement] = {}
_ADV_CACHE_SIZE = 4096


def _adv_parse(x: dict[str, Any]) -> Advertisement:
    degraded = x.get("degraded")
    return Advertisement(
        aggregation_length=int(x.get("aggregationLength", 32)),
        aggregation_length_v6=int(x.get("aggregationLengthV6", 128)),
        communities=tuple(str(c) for c in x.get("communities", [])),
        large_communities=tuple(str(c) for c in x.get("largeCommunities", [])),
        local_pref=_optional_int(x, "localPref"),
        med=_optional_int(x, "med"),
        peers=tuple(str(p) for p in x.get("peers", [])),
        node_selectors=tuple(LabelSelector.parse(s) for s in x.get("nodeSelectors", [])),
        degraded=None if degraded is None else _degraded_parse(degraded),
        mbps_per_endpoint=_optional_int(x, "mbpsPerEndpoint"),
        data_path_check=_check_parse(x.get("dataPathCheck")),
    )


def _check_parse(x: Any) -> DataPathCheck | None:
    if x is None:
        return None
    if not isinstance(x, dict):
        raise ContractError("dataPathCheck is not an object")
    return DataPathCheck(port=_optional_int(x, "port"))


def _target_parse(x: Any) -> DataPathTarget:
    if not isinstance(x, dict):
        raise ContractError("dataPath is not an object")
    if x.get("problem"):
        return DataPathTarget(problem=str(x["problem"]))
    port = int(x["port"])
    if not 1 <= port <= 65535:
        raise ContractError(f"dataPath port {port} is not 1..65535")
    try:
        parse_ip(str(x["address"]))
    except AddressError as exc:
        raise ContractError(f"dataPath address: {exc}") from None
    return DataPathTarget(address=str(x["address"]), port=port)


def _degraded_parse(x: Any) -> Degraded:
    if not isinstance(x, dict):
        raise ContractError("degraded is not an object")
    return Degraded(
        local_pref=_optional_int(x, "localPref"),
        med=_optional_int(x, "med"),
        as_path_prepend=int(x.get("asPathPrepend", 0)),
        communities=tuple(str(c) for c in x.get("communities", [])),
        large_communities=tuple(str(c) for c in x.get("largeCommunities", [])),
        node_selectors=tuple(LabelSelector.parse(s) for s in x.get("nodeSelectors", [])),
    )


def _optional_int(x: Mapping[str, Any], name: str) -> int | None:
    value = x.get(name)
    return None if value is None else int(value)


# --- shards -----------------------------------------------------------------
def shard_of(key: str, shards: int) -> int:
    return zlib.crc32(key.encode()) % shards


def shard_count(encoded: Mapping[str, str], at_least: int = 1) -> int:
    """Smallest power of two >= ``at_least`` whose shards all fit :data:`SHARD_BUDGET`."""
    n = max(1, at_least)
    header = len(SCHEMA_KEY) + len(str(SCHEMA_VERSION))  # every shard carries its schema
    while True:
        sizes = [header] * n
        for k, v in encoded.items():
            sizes[shard_of(k, n)] += len(k) + len(v)
        if max(sizes) <= SHARD_BUDGET:
            return n
        n *= 2


def layout(encoded: Mapping[str, str], shards: int) -> list[dict[str, str]]:
    """Shard data dicts (index = shard number), each with the schema version."""
    out: list[dict[str, str]] = [{SCHEMA_KEY: str(SCHEMA_VERSION)} for _ in range(shards)]
    for k, v in encoded.items():
        out[shard_of(k, shards)][k] = v
    return out


@dataclass
class Snapshot:
    """What a reader got from all shards: good entries, and what it had to skip and why."""

    entries: dict[str, Assignment] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # key -> reason


def check_schema(data: Mapping[str, str]) -> None:
    """Raise unless the shard says which schema it is, and it is one we can read."""
    version = data.get(SCHEMA_KEY, "")
    try:
        v = int(version)
    except ValueError:
        raise ContractError(f"shard has no valid {SCHEMA_KEY}: {version!r}") from None
    if v > SCHEMA_VERSION:
        raise NewerSchema(f"shard schema {v} is newer than supported {SCHEMA_VERSION}")


def read_shards(shards: Iterable[Mapping[str, str]]) -> Snapshot:
    """Union of all shards. Raises :class:`NewerSchema` if any shard is newer than we know."""
    snap = Snapshot()
    for data in shards:
        check_schema(data)
        for k, raw in data.items():
            if k == SCHEMA_KEY:
                continue
            try:
                snap.entries[k] = decode(k, raw)
            except ContractError as exc:
                snap.errors[k] = str(exc)
    return snap

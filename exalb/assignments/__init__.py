"""The shared ConfigMap contract between the allocator (writer) and the announcers (readers).

Pure data and codecs only: no Kubernetes client, so both cores can use it.
"""

from .codec import (
    LABEL,
    SCHEMA_KEY,
    SHARD_BUDGET,
    ContractError,
    NewerSchema,
    Snapshot,
    check_schema,
    decode,
    encode,
    layout,
    read_shards,
    shard_count,
    shard_of,
)
from .model import (
    CLUSTER,
    LOCAL,
    SCHEMA_VERSION,
    Advertisement,
    Assignment,
    DataPathCheck,
    DataPathTarget,
    Degraded,
    entry_key,
)
from .selectors import LabelSelector, Requirement, SelectorError, any_matches

__all__ = [
    "CLUSTER",
    "LABEL",
    "LOCAL",
    "SCHEMA_KEY",
    "SCHEMA_VERSION",
    "SHARD_BUDGET",
    "Advertisement",
    "Assignment",
    "ContractError",
    "DataPathCheck",
    "DataPathTarget",
    "Degraded",
    "LabelSelector",
    "NewerSchema",
    "Requirement",
    "SelectorError",
    "Snapshot",
    "any_matches",
    "check_schema",
    "decode",
    "encode",
    "entry_key",
    "layout",
    "read_shards",
    "shard_count",
    "shard_of",
]

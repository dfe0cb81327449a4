"""The owner of what the allocator creates at run time, so `helm uninstall` leaves nothing.

Helm deletes only what it rendered. The assignments ConfigMaps and the Lease are
the allocator's own, created while it runs; owned by its ServiceAccount, which
Helm does delete, they go with it: the garbage collector removes dependents
whose owner is gone. Without an owner (host processes, tests) they stay.
"""

from __future__ import annotations

from typing import Any

from . import retry
from .rest import Client, resource_path

Obj = dict[str, Any]


def service_account_owner(api: Client, namespace: str, name: str | None) -> list[Obj]:
    """``metadata.ownerReferences`` naming the ServiceAccount, or none without a name.

    Read once at start-up, with retries: a UID, not a name, is what the garbage
    collector compares, so a re-created account does not adopt old objects.
    """
    if not name:
        return []
    path = f"{resource_path('v1', 'serviceaccounts', namespace)}/{name}"
    account = retry.call(lambda: api.get(path), attempts=8, max_seconds=60.0)
    uid = account["metadata"]["uid"]
    # No blockOwnerDeletion: setting it needs rights on the owner that we do not want.
    return [{"apiVersion": "v1", "kind": "ServiceAccount", "name": name, "uid": uid}]

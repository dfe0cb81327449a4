"""One ``BGPSessionStatus.status.peers[]`` entry, from the session record.

What the record holds (``core.session``) becomes camelCase fields with RFC 3339 times;
``exalb.sessionstatus`` reads them back for the conditions, the allocator and exalbctl.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .session import NotificationSeen, SessionRecord

Obj = dict[str, Any]


def timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def notification_status(seen: NotificationSeen | None) -> Obj | None:
    if seen is None:
        return None
    return {
        "code": seen.code,
        "subcode": seen.subcode,
        "name": seen.name,
        "communication": seen.communication,
        "at": timestamp(seen.at),
    }


def session_fields(record: SessionRecord) -> Obj:
    """The record's part of one ``status.peers[]`` entry; absent values are left out."""
    out: Obj = {
        "state": record.state,
        "since": timestamp(record.since),
        "lastError": record.reason,
    }
    if record.negotiated is not None:
        out["holdTime"] = record.negotiated.hold_time
        out["capabilities"] = list(record.negotiated.capabilities)
    if record.ended_by is not None:
        out["endedBy"] = record.ended_by
    if record.end_of_rib_sent is not None:
        out["endOfRibSent"] = timestamp(record.end_of_rib_sent)
    if record.end_of_rib_received is not None:
        out["endOfRibReceived"] = timestamp(record.end_of_rib_received)
    for key, seen in (
        ("lastNotificationReceived", record.received),
        ("lastNotificationSent", record.sent),
    ):
        shown = notification_status(seen)
        if shown is not None:
            out[key] = shown
    return out

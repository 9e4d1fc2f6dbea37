"""The identity of what the bundle holds: stable UUIDs, so that importing again updates, never duplicates."""

from __future__ import annotations

import uuid

#: The namespace of every object's UUID: uuid5(NAMESPACE, "chart:matomo:Visits") is the same on every import.
NAMESPACE = uuid.UUID("9b1f4c1e-5d0e-4c52-9a57-2f1e8a9d4b30")
#: The version of Superset's import format.
VERSION = "1.0.0"


def object_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))

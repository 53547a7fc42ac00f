"""Naming and time helpers shared by the KFP API mappings.

KFP objects have free-form display names and UUID ids; flowyard resources have DNS-1123 names
and a uid. The KFP id of an object *is* its resource uid. Pipelines and experiments, whose
display names KFP keeps unique per namespace, get a deterministic resource name derived from the
display name (so the store itself refuses a duplicate); runs get ``generateName``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from flowyard.resources.meta import Resource

ANNOTATION_PREFIX = "pipelines.kubeflow.org/"
CREATED_AT = ANNOTATION_PREFIX + "created-at"
"""Annotation with the creation time in epoch seconds (sub-second, for a stable sort)."""
STORAGE_STATE = ANNOTATION_PREFIX + "storage-state"
"""Label: ``AVAILABLE`` (or absent) / ``ARCHIVED``."""
MAX_NAME = 63


def slug(text: str, max_length: int = MAX_NAME) -> str:
    """``text`` as a DNS-1123 label: lowercase alphanumerics and ``-``."""
    value = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    value = re.sub(r"-{2,}", "-", value)[:max_length].strip("-")
    return value or "x"


def stable_name(display_name: str, *, prefix: str = "") -> str:
    """A deterministic resource name for a display name: the display name itself when it is
    already a valid name, else its slug plus a short hash (so distinct names never clash)."""
    base = f"{prefix}{display_name}"
    plain = slug(base)
    if plain == base:
        return plain
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{slug(base, MAX_NAME - 9)}-{digest}"


def generate_prefix(display_name: str) -> str:
    """A ``generateName`` prefix for a display name (room left for the random suffix)."""
    return slug(display_name, MAX_NAME - 6) + "-"


def now_epoch() -> float:
    return datetime.now(UTC).timestamp()


def rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_epoch(value: Any) -> float | None:
    """RFC 3339 (or epoch seconds) to epoch seconds; None for empty values."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def created_epoch(obj: Resource) -> float:
    """When the object was created: the precise annotation, else ``creationTimestamp``."""
    md = obj.get("metadata") or {}
    precise = (md.get("annotations") or {}).get(CREATED_AT)
    if precise:
        try:
            return float(precise)
        except ValueError:
            pass
    return parse_epoch(md.get("creationTimestamp")) or 0.0


def stamp(md: dict[str, Any]) -> None:
    """Record the precise creation time on new metadata."""
    md.setdefault("annotations", {})[CREATED_AT] = f"{now_epoch():.6f}"


def storage_state(obj: Resource) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return "ARCHIVED" if labels.get(STORAGE_STATE) == "ARCHIVED" else "AVAILABLE"

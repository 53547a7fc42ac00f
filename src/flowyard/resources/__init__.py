"""The object model: resources as Kubernetes-shaped dicts, the kind registry, admission."""

from flowyard.resources import kinds as _kinds  # noqa: F401  (registers the built-in kinds)
from flowyard.resources.admission import admit
from flowyard.resources.conditions import get_condition, is_true, set_condition
from flowyard.resources.meta import DEFAULT_NAMESPACE, Resource
from flowyard.resources.registry import REGISTRY, KindInfo, KindRegistry, PrinterColumn

__all__ = [
    "DEFAULT_NAMESPACE",
    "REGISTRY",
    "KindInfo",
    "KindRegistry",
    "PrinterColumn",
    "Resource",
    "admit",
    "get_condition",
    "is_true",
    "set_condition",
]

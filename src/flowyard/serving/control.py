"""The serving component's hooks for the control plane (kept free of heavy imports)."""

from __future__ import annotations

from typing import Any


def controllers() -> list[Any]:
    """Register the KServe kinds and return the serving controllers."""
    from flowyard.serving.controller import InferenceServiceController
    from flowyard.serving.graph_controller import InferenceGraphController
    from flowyard.serving.kinds import register_kinds

    register_kinds()
    return [InferenceServiceController, InferenceGraphController]


def install(store: Any) -> None:
    """Startup hook: register the kinds and create the shipped ClusterServingRuntimes."""
    from flowyard.serving.kinds import register_kinds
    from flowyard.serving.selection import ensure_builtin_runtimes

    register_kinds()
    ensure_builtin_runtimes(store)

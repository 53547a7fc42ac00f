"""The InferenceGraph controller: a graph router per InferenceGraph, its services resolved.

Each reconcile (level-triggered, idempotent):

1. the graph is gone or being deleted: close its router;
2. start (or find) its router on the port of ``status.url`` (kept across updates and, when
   free, across control-plane restarts);
3. resolve every ``serviceName`` step to its InferenceService in the graph's namespace
   (``status.url`` + ``/v1/models/<name>:predict``, as KServe's controller does) and push the
   compiled graph to the router;
4. write ``status.url`` and the ``Ready`` condition: True when every referenced
   InferenceService is Ready, else False with reason ``ServiceNotFound`` or ``ServiceNotReady``
   naming them. While not Ready the graph is requeued each second; afterwards every few seconds
   (a service's readiness is read, not watched).
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlparse

from flowyard.controllers.base import Controller, ControllerContext, ObjectKey, Result
from flowyard.errors import NotFoundError
from flowyard.resources.conditions import set_condition
from flowyard.serving.graph import compile_graph
from flowyard.serving.kinds import INFERENCEGRAPH, INFERENCESERVICE
from flowyard.serving.router import get_hub

_NOT_READY_REQUEUE = 1.0
_READY_REQUEUE = 5.0


class InferenceGraphController(Controller):
    kind = INFERENCEGRAPH
    workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.hub = get_hub()

    def reconcile(self, key: ObjectKey) -> Result | None:
        hub_key = (key.namespace, key.name)
        try:
            graph = self.store.get(INFERENCEGRAPH, key.namespace, key.name)
        except NotFoundError:
            self.hub.remove_graph(hub_key)
            return None
        if graph["metadata"].get("deletionTimestamp"):
            self.hub.remove_graph(hub_key)
            return None
        new = copy.deepcopy(graph)
        status = new.setdefault("status", {})
        port = self.hub.ensure_graph(hub_key, urlparse(str(status.get("url") or "")).port or 0)
        urls, problems = self._resolve(new)
        spec = new.get("spec") or {}
        timeout = float(spec.get("timeout") or 300)
        self.hub.apply_graph(hub_key, compile_graph(spec, urls, timeout))
        status["url"] = f"http://127.0.0.1:{port}"
        status["observedGeneration"] = new["metadata"].get("generation")
        if problems:
            reason = (
                "ServiceNotFound"
                if any("not found" in p for p in problems)
                else ("ServiceNotReady")
            )
            set_condition(new, "Ready", False, reason, "; ".join(problems))
        else:
            set_condition(new, "Ready", True)
        if new.get("status") != graph.get("status"):
            self.store.update_status(new)
        return Result(requeue_after=_NOT_READY_REQUEUE if problems else _READY_REQUEUE)

    def _resolve(self, graph: dict[str, Any]) -> tuple[dict[str, str | None], list[str]]:
        """serviceName -> predict URL (None when not Ready), and what is missing."""
        namespace = graph["metadata"]["namespace"]
        urls: dict[str, str | None] = {}
        problems: list[str] = []
        for node in ((graph.get("spec") or {}).get("nodes") or {}).values():
            for step in node.get("steps") or []:
                name = step.get("serviceName")
                if not name or name in urls:
                    continue
                urls[name] = None
                try:
                    isvc = self.store.get(INFERENCESERVICE, namespace, name)
                except NotFoundError:
                    problems.append(f"InferenceService {name!r} not found in {namespace!r}")
                    continue
                isvc_status = isvc.get("status") or {}
                if not _ready(isvc_status) or not isvc_status.get("url"):
                    problems.append(f"InferenceService {name!r} is not Ready")
                    continue
                urls[name] = f"{isvc_status['url']}/v1/models/{name}:predict"
        return urls, problems


def _ready(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )

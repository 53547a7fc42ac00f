"""The node bookkeeping shared by the parts of :class:`~flowyard.pipelines.argo.engine.WorkflowRun`.

A node is one entry of the Workflow's ``status.nodes`` in Argo's shape (``id``, ``name``,
``displayName``, ``type``, ``templateName``, ``phase``, ``boundaryID``, ``children``,
``startedAt``, ``finishedAt``, ``message``, ``inputs``, ``outputs``) plus ``x``, the engine's own
per-node bookkeeping. Node ids are derived from the node name, so a rebuilt engine finds the same
nodes. :class:`RunBase` holds what every part needs; the parts (``structure``, ``spawn``,
``podrun``) are mixins over it and reach each other through the hooks it declares.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from typing import Any

from flowyard.executors.base import BaseExecutor
from flowyard.pipelines.argo.model import template_type
from flowyard.pipelines.argo.scope import Scope, resolve_arguments

FINAL = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted"})
FAILED = frozenset({"Failed", "Error"})


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_id(wf_name: str, name: str) -> str:
    """Argo-style node id: the workflow name and a hash of the node name."""
    return f"{wf_name}-{int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)}"


class RunBase:
    """State and node helpers of one Workflow run (see ``engine.WorkflowRun``)."""

    wf: dict[str, Any]
    spec: dict[str, Any]
    templates: dict[str, dict[str, Any]]
    executor: BaseExecutor
    labels: dict[str, str]
    log_dir: str
    uid: str
    status: dict[str, Any]

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        nodes: dict[str, dict[str, Any]] = self.status["nodes"]
        return nodes

    def _wf_params(self) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = (self.spec.get("arguments") or {}).get("parameters") or []
        return params

    def failures(self) -> list[dict[str, Any]]:
        """The failed Pod nodes, as ``{{workflow.failures}}`` lists them."""
        return [
            {
                "displayName": n["displayName"],
                "message": n["message"],
                "templateName": n["templateName"],
                "phase": n["phase"],
                "podName": n["name"],
                "finishedAt": n["finishedAt"],
            }
            for n in self.nodes.values()
            if n["type"] == "Pod" and n["phase"] in FAILED
        ]

    # -- hooks implemented by the parts ----------------------------------------------------
    def _advance(self, node: dict[str, Any]) -> bool:
        raise NotImplementedError

    def _spawn(
        self, owner: dict[str, Any], parent: dict[str, Any], step: dict[str, Any], name: str
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _complete_container(self, node: dict[str, Any], template: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- nodes -----------------------------------------------------------------------------
    def _new_node(
        self, name: str, display: str, kind: str, template: str, parent: str | None
    ) -> dict[str, Any]:
        wf_name = self.wf["metadata"]["name"]
        node_id = stable_id(wf_name, name) if name != wf_name else wf_name
        node: dict[str, Any] = {
            "id": node_id,
            "name": name,
            "displayName": display,
            "type": kind,
            "templateName": template,
            "phase": "Pending",
            "boundaryID": parent,
            "children": [],
            "startedAt": None,
            "finishedAt": None,
            "message": "",
            "x": {},
        }
        self.nodes[node_id] = node
        if parent:
            self.nodes[parent]["children"].append(node_id)
        return node

    def _invoke(
        self,
        template_name: str,
        name: str,
        display: str,
        parent: str | None,
        params: dict[str, str],
        artifacts: dict[str, str],
    ) -> dict[str, Any]:
        """A node running ``template_name`` with the given arguments (inputs resolved)."""
        from flowyard.pipelines.argo import pods

        template = self.templates[template_name]
        kind = {"container": "Pod", "script": "Pod", "steps": "Steps", "dag": "DAG"}[
            str(template_type(template))
        ]
        node = self._new_node(name, display, kind, template_name, parent)
        node["logName"] = pods.safe(display if kind != "Pod" else name.split(".", 1)[-1])
        try:
            inputs = resolve_arguments(template, params, artifacts, self._scope(None))
        except ValueError as exc:
            self._finish(node, "Error", str(exc))
            return node
        node["inputs"] = inputs
        return node

    def _start(self, node: dict[str, Any]) -> None:
        if node["phase"] == "Pending":
            node.update(phase="Running", startedAt=now_iso())
            node["startedAtTs"] = time.time()

    def _finish(self, node: dict[str, Any], phase: str, message: str = "") -> None:
        if not node.get("startedAt"):
            node["startedAt"] = now_iso()
            node["startedAtTs"] = time.time()
        node.update(phase=phase, message=message, finishedAt=now_iso())
        node["finishedAtTs"] = time.time()

    def _scope(self, owner: dict[str, Any] | None) -> Scope:
        return Scope(self, owner)

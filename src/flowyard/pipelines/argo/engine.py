"""A local engine for Argo ``Workflow`` specs (what ``kfp<2`` compiled, and Argo's examples).

The whole state is the Workflow's ``status`` in Argo's shape — ``phase`` (Pending, Running,
Succeeded, Failed, Error), ``startedAt``, ``finishedAt``, ``message``, ``nodes`` (by id: ``name``,
``displayName``, ``type`` Pod/Steps/StepGroup/DAG/TaskGroup/Skipped, ``templateName``, ``phase``,
``children``, ``inputs``, ``outputs``) — plus ``status.flowyard`` (engine bookkeeping), so a
controller can store it and rebuild the engine after a restart (:meth:`WorkflowRun.step` finds
running pods by process name).

Semantics: ``steps`` groups run in order, the steps of a group in parallel; ``dag`` tasks run
when their ``dependencies``/``depends`` are met (a failed task stops new tasks from being
scheduled: Argo's failFast); ``when`` false → ``Skipped``; ``withItems``/``withParam`` expand a
step/task into one child per item (outputs aggregate as JSON lists); ``retryStrategy`` (``limit``,
``retryPolicy``, ``backoff``) retries a failed pod; ``onExit`` runs after the entrypoint with
``workflow.status``/``workflow.failures``; ``spec.parallelism`` caps running pods.

The parts: ``nodes`` (node bookkeeping), ``structure`` (steps/dag/groups), ``spawn`` (one step
or task → nodes: ``when``, ``withItems``/``withParam``), ``podrun`` (launch, watch, retry).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from flowyard import config
from flowyard.errors import FlowyardError
from flowyard.executors.base import BaseExecutor
from flowyard.pipelines.argo import expr
from flowyard.pipelines.argo.nodes import FAILED, FINAL, now_iso
from flowyard.pipelines.argo.podrun import PodMixin
from flowyard.pipelines.argo.spawn import SpawnMixin
from flowyard.pipelines.argo.structure import StructureMixin

__all__ = ["FAILED", "FINAL", "WorkflowRun", "now_iso"]

_MAX_ROUNDS = 1000


class WorkflowRun(StructureMixin, SpawnMixin, PodMixin):
    """One Workflow; call :meth:`step` whenever something may have changed."""

    def __init__(
        self,
        workflow: dict[str, Any],
        *,
        executor: BaseExecutor,
        labels: dict[str, str],
        log_dir: str,
    ) -> None:
        self.wf = workflow
        self.spec = workflow["spec"]
        self.templates = {t["name"]: t for t in self.spec.get("templates") or []}
        self.executor = executor
        self.labels = labels
        self.log_dir = log_dir
        md = workflow["metadata"]
        self.uid = str(md.get("uid") or md["name"])
        status = workflow.get("status") or {}
        self.status = json.loads(json.dumps(status)) if status.get("nodes") else {}
        if not self.status:
            run_dir = config.home() / "pipelines" / "workflows" / self.uid
            self.status = {
                "phase": "Pending",
                "startedAt": None,
                "finishedAt": None,
                "message": "",
                "nodes": {},
                "flowyard": {"runDir": str(run_dir), "entry": None, "exit": None},
            }

    # -- public ----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.status["phase"] in ("Succeeded", "Failed", "Error")

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(self.status))
        return out

    def step(self) -> bool:
        if self.done:
            return False
        book = self.status["flowyard"]
        changed = False
        if self.status["phase"] == "Pending":
            self.status.update(phase="Running", startedAt=now_iso())
            book["startedAtTs"] = time.time()
            params = {p["name"]: str(p.get("value", "")) for p in self._wf_params()}
            entry = self._invoke(
                self.spec["entrypoint"],
                self.wf["metadata"]["name"],
                self.wf["metadata"]["name"],
                None,
                params,
                {},
            )
            book["entry"] = entry["id"]
            changed = True
        for _ in range(_MAX_ROUNDS):
            if not self._advance_all():
                break
            changed = True
        return self._maybe_finish() or changed

    def terminate(self) -> None:
        """Argo's ``spec.shutdown: Terminate``: kill running pods, fail the workflow."""
        self.status["flowyard"]["terminating"] = True
        for node in self.nodes.values():
            if node["type"] == "Pod" and node["phase"] in ("Pending", "Running"):
                proc = node.get("x", {}).get("process")
                if proc:
                    with contextlib.suppress(FlowyardError):
                        self.executor.kill(proc, 2.0)
                self._finish(node, "Failed", "terminated")

    # -- advancing -------------------------------------------------------------------------
    def _advance_all(self) -> bool:
        book = self.status["flowyard"]
        changed = self._advance(self.nodes[book["entry"]])
        entry = self.nodes[book["entry"]]
        if entry["phase"] in FINAL and self.spec.get("onExit") and not book.get("exit"):
            self.status["flowyard"]["entryPhase"] = entry["phase"]
            name = f"{self.wf['metadata']['name']}.onExit"
            book["exit"] = self._invoke(self.spec["onExit"], name, "onExit", None, {}, {})["id"]
            changed = True
        if book.get("exit"):
            changed |= self._advance(self.nodes[book["exit"]])
        return changed

    def _advance(self, node: dict[str, Any]) -> bool:
        if node["phase"] in FINAL:
            return False
        if node["type"] == "Pod":
            return self._advance_pod(node)
        if node["type"] in ("StepGroup", "TaskGroup"):
            return self._advance_group(node)
        if node["type"] == "Steps":
            return self._advance_steps(node)
        return self._advance_dag(node)

    # -- completion ------------------------------------------------------------------------
    def _complete_container(self, node: dict[str, Any], template: dict[str, Any]) -> None:
        """Succeed a steps/dag node, with its outputs from ``valueFrom.parameter``."""
        scope = self._scope(node)
        params = []
        for param in (template.get("outputs") or {}).get("parameters") or []:
            source = (param.get("valueFrom") or {}).get("parameter")
            value = expr.substitute(str(source), scope.lookup) if source else param.get("value")
            params.append({"name": param["name"], "value": value})
        arts = []
        for art in (template.get("outputs") or {}).get("artifacts") or []:
            source = art.get("from") or ""
            if source:
                arts.append({"name": art["name"], "uri": scope.artifact({"from": source})})
        node["outputs"] = {"parameters": params, "artifacts": arts}
        self._finish(node, "Succeeded")

    def _maybe_finish(self) -> bool:
        book = self.status["flowyard"]
        entry = self.nodes[book["entry"]]
        if entry["phase"] not in FINAL:
            return False
        if self.spec.get("onExit") and (
            not book.get("exit") or self.nodes[book["exit"]]["phase"] not in FINAL
        ):
            return False
        phases = [entry["phase"]] + (
            [self.nodes[book["exit"]]["phase"]] if book.get("exit") else []
        )
        failed = next((p for p in phases if p in FAILED), None)
        self.status["phase"] = failed or "Succeeded"
        self.status["finishedAt"] = now_iso()
        book["finishedAtTs"] = time.time()
        if failed:
            bad = [n for n in self.nodes.values() if n["type"] == "Pod" and n["phase"] in FAILED]
            self.status["message"] = (
                f"step '{bad[0]['displayName']}' failed: {bad[0]['message']}"
                if bad
                else entry["message"]
            )
        return True

"""DAG scheduling for :class:`~flowyard.pipelines.engine.PipelineRun`: groups and task readiness.

A *group* node (the root, a sub-DAG, a ParallelFor iteration) owns the tasks of its component's
DAG; a *loop* node owns its iterations. :meth:`GroupMixin._advance` makes one pass over the running
groups: it starts the children that are ready and finishes the groups whose children all ended.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flowyard.errors import FlowyardError
from flowyard.executors.base import BaseExecutor
from flowyard.pipelines import cel
from flowyard.pipelines import state as st
from flowyard.pipelines.ir import PipelineIR
from flowyard.pipelines.placeholders import RuntimeContext
from flowyard.pipelines.resolve import (
    ResolveError,
    dag_outputs,
    loop_items,
    missing_required,
    resolve_inputs,
)
from flowyard.pipelines.validate import upstream_tasks


class GroupMixin:
    """Group/loop handling; expects the attributes PipelineRun defines."""

    ir: PipelineIR
    executor: BaseExecutor
    _state: dict[str, Any]

    if TYPE_CHECKING:

        def _nodes(self) -> dict[str, dict[str, Any]]:
            raise NotImplementedError

        def _context(self, node: dict[str, Any]) -> RuntimeContext:
            raise NotImplementedError

        def _start_leaf(self, node: dict[str, Any], task: dict[str, Any]) -> bool:
            raise NotImplementedError

    # ------------------------------------------------------------------ passes

    def _advance(self) -> bool:
        """One pass over running groups; True when anything changed."""
        changed = False
        nodes = self._nodes()
        root = nodes[st.ROOT_ID]
        if root["state"] == st.PENDING:
            self._expand_dag(root)
            root["state"] = st.RUNNING
            root["startedAt"] = time.time()
            changed = True
        for node in list(nodes.values()):
            if node["state"] != st.RUNNING:
                continue
            if node["kind"] == st.KIND_LOOP:
                changed |= self._advance_loop(node)
            elif node["kind"] in st.GROUP_KINDS:
                changed |= self._advance_dag(node)
        return changed

    def _task_spec(self, node: dict[str, Any]) -> dict[str, Any]:
        parent = self._nodes()[node["parent"]]
        spec: dict[str, Any] = self.ir.dag_tasks(parent["component"])[node["name"]]
        return spec

    def _expand_dag(self, group: dict[str, Any]) -> None:
        """Create the (Pending) task nodes of ``group``'s DAG."""
        nodes = self._nodes()
        for name, task in self.ir.dag_tasks(group["component"]).items():
            comp_name = task["componentRef"]["name"]
            comp = self.ir.component(comp_name)
            if "parameterIterator" in task or "artifactIterator" in task:
                kind = st.KIND_LOOP
            elif "dag" in comp:
                kind = st.KIND_DAG
            elif "importer" in self.ir.executors.get(comp.get("executorLabel", ""), {}):
                kind = st.KIND_IMPORTER
            else:
                kind = st.KIND_CONTAINER
            node_id = st.child_id(group["id"], name)
            nodes[node_id] = st.new_node(node_id, name, group["id"], kind, comp_name)
            group["children"].append(node_id)

    def _advance_dag(self, group: dict[str, Any]) -> bool:
        nodes = self._nodes()
        changed = False
        for child_id in group["children"]:
            child = nodes[child_id]
            if child["state"] == st.PENDING:
                changed |= self._try_start(child, group)
        children = [nodes[c] for c in group["children"]]
        if all(st.is_final(c) for c in children):
            self._finish_group(group, children)
            changed = True
        return changed

    def _finish_group(self, group: dict[str, Any], children: list[dict[str, Any]]) -> None:
        states = {c["state"] for c in children}
        failed = [c["name"] for c in children if c["state"] == st.FAILED]
        if failed:
            st.finish(group, st.FAILED, "TaskFailed", f"failed: {', '.join(failed)}")
            return
        if st.CANCELED in states or any(c["reason"] == st.RUN_TERMINATED for c in children):
            st.finish(group, st.CANCELED, st.RUN_TERMINATED, "run terminated")
            return
        if any(c["state"] == st.SKIPPED and c["reason"] == st.UPSTREAM_FAILED for c in children):
            st.finish(group, st.FAILED, st.UPSTREAM_FAILED, "a task was skipped")
            return
        component = self.ir.component(group["component"])
        nodes = self._nodes()
        params, arts = dag_outputs(component, lambda n: nodes[st.child_id(group["id"], n)])
        group["outputs"] = {"parameters": params, "artifacts": arts}
        st.finish(group, st.SUCCEEDED)

    # ------------------------------------------------------------------ readiness

    def _try_start(self, node: dict[str, Any], group: dict[str, Any]) -> bool:
        """Start ``node`` if its upstream tasks ended; True when its state changed."""
        nodes = self._nodes()
        task = self._task_spec(node)

        def sibling(name: str) -> dict[str, Any]:
            return nodes[st.child_id(group["id"], name)]

        upstream = [sibling(d) for d in upstream_tasks(task)]
        if not all(st.is_final(u) for u in upstream):
            return False
        if node.get("nextAttemptAt") and node["nextAttemptAt"] > time.time():
            return False
        strategy = (task.get("triggerPolicy") or {}).get("strategy", "")
        bad = [u["name"] for u in upstream if not st.is_ok(u)]
        if bad and strategy != "ALL_UPSTREAM_TASKS_COMPLETED":
            st.finish(node, st.SKIPPED, st.UPSTREAM_FAILED, f"upstream {', '.join(bad)} failed")
            return True
        if node["attempt"] == 0 and not node.get("inputsResolved"):
            try:
                self._resolve_node_inputs(node, task, group, sibling)
            except (ResolveError, FlowyardError, ValueError) as exc:
                st.finish(node, st.FAILED, "InputError", str(exc))
                return True
            condition = (task.get("triggerPolicy") or {}).get("condition")
            if condition and not self._condition_true(node, condition):
                st.finish(node, st.SKIPPED, st.CONDITION_NOT_MET, f"condition false: {condition}")
                return True
        if node["kind"] in (st.KIND_DAG, st.KIND_LOOP):
            return self._start_group(node, task)
        return self._start_leaf(node, task)

    def _resolve_node_inputs(
        self, node: dict[str, Any], task: dict[str, Any], group: dict[str, Any], sibling: Any
    ) -> None:
        comp = self.ir.component(node["component"])
        params, arts = resolve_inputs(
            node["name"], task, comp, group, sibling, self._context(node), self._state["runName"]
        )
        node["inputs"] = {"parameters": params, "artifacts": arts}
        node["inputsResolved"] = True
        if node["kind"] in (st.KIND_CONTAINER, st.KIND_IMPORTER):
            missing = missing_required(node["name"], comp, params, arts)
            if missing:
                raise ResolveError(missing)

    def _condition_true(self, node: dict[str, Any], condition: str) -> bool:
        try:
            return cel.evaluate(condition, node["inputs"]["parameters"])
        except cel.CelError as exc:
            raise ResolveError(f"task {node['name']!r}: {exc}") from exc

    def _start_group(self, node: dict[str, Any], task: dict[str, Any]) -> bool:
        node["startedAt"] = time.time()
        if node["kind"] == st.KIND_DAG:
            self._expand_dag(node)
            node["state"] = st.RUNNING
            return True
        try:
            item_input, items, is_artifact = loop_items(
                task, node["inputs"]["parameters"], node["inputs"]["artifacts"]
            )
        except (ResolveError, ValueError) as exc:
            st.finish(node, st.FAILED, "InputError", f"task {node['name']!r}: {exc}")
            return True
        node["parallelism"] = int((task.get("iteratorPolicy") or {}).get("parallelismLimit") or 0)
        node["iterations"] = len(items)
        nodes = self._nodes()
        for index, item in enumerate(items):
            it_id = st.child_id(node["id"], f"iteration-{index}")
            it = st.new_node(
                it_id, f"iteration-{index}", node["id"], st.KIND_ITERATION, node["component"]
            )
            it["inputs"] = {
                "parameters": dict(node["inputs"]["parameters"]),
                "artifacts": dict(node["inputs"]["artifacts"]),
            }
            if is_artifact:
                it["inputs"]["artifacts"][item_input] = [item]
            else:
                it["inputs"]["parameters"][item_input] = item
            it["iterationIndex"] = index
            nodes[it_id] = it
            node["children"].append(it_id)
        node["state"] = st.RUNNING
        return True

    def _advance_loop(self, loop: dict[str, Any]) -> bool:
        nodes = self._nodes()
        iterations = [nodes[c] for c in loop["children"]]
        changed = False
        limit = loop.get("parallelism") or 0
        running = sum(1 for it in iterations if it["state"] == st.RUNNING)
        for it in iterations:
            if it["state"] != st.PENDING or self._state["phase"] != st.PHASE_RUNNING:
                continue
            if limit and running >= limit:
                break
            if not it["children"]:
                self._expand_dag(it)
            it["state"] = st.RUNNING
            it["startedAt"] = time.time()
            running += 1
            changed = True
        if all(st.is_final(it) for it in iterations):
            self._finish_loop(loop, iterations)
            changed = True
        return changed

    def _finish_loop(self, loop: dict[str, Any], iterations: list[dict[str, Any]]) -> None:
        failed = [it["name"] for it in iterations if it["state"] == st.FAILED]
        if failed:
            st.finish(loop, st.FAILED, "IterationFailed", f"failed: {', '.join(failed)}")
            return
        if any(it["state"] == st.CANCELED for it in iterations):
            st.finish(loop, st.CANCELED, st.RUN_TERMINATED, "run terminated")
            return
        out_defs = self.ir.component(loop["component"]).get("outputDefinitions") or {}
        params: dict[str, Any] = {}
        for name in out_defs.get("parameters") or {}:
            params[name] = [
                it["outputs"]["parameters"][name]
                for it in iterations
                if name in it["outputs"]["parameters"]
            ]
        arts: dict[str, list[dict[str, Any]]] = {}
        for name in out_defs.get("artifacts") or {}:
            arts[name] = [a for it in iterations for a in it["outputs"]["artifacts"].get(name, [])]
        loop["outputs"] = {"parameters": params, "artifacts": arts}
        st.finish(loop, st.SUCCEEDED)

"""Leaf tasks for :class:`~flowyard.pipelines.engine.PipelineRun`: container steps and importers.

A container step is cache-checked, launched through the executor, polled, and on exit its
outputs are read back (``executor_io.collect_outputs``). A failed attempt is retried per the
task's ``retryPolicy``; the next attempt waits ``backoffDuration * backoffFactor**(n-1)`` seconds,
capped at ``backoffMaxDuration``.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from flowyard.errors import FlowyardError, NotFoundError
from flowyard.executors.base import BaseExecutor, ProcessState, ProcessStatus
from flowyard.pipelines import launch
from flowyard.pipelines import state as st
from flowyard.pipelines.cache import TaskCache, cache_key, fingerprint
from flowyard.pipelines.executor_io import OutputError, collect_outputs, prepare_output_dirs
from flowyard.pipelines.ir import PipelineIR
from flowyard.pipelines.placeholders import RuntimeContext


def parse_duration(value: Any, default: float) -> float:
    """Seconds of a protobuf Duration in JSON form (``"1.5s"``) or as a number."""
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
    text = str(value).strip()
    return float(text[:-1]) if text.endswith("s") else float(text)


def retry_delay(policy: dict[str, Any], failures: int) -> float:
    """Backoff before attempt ``failures + 1``."""
    base = parse_duration(policy.get("backoffDuration"), 0.0)
    factor = float(policy.get("backoffFactor") or 2.0)
    cap = parse_duration(policy.get("backoffMaxDuration"), 3600.0)
    return min(base * factor ** max(failures - 1, 0), cap)


class StepMixin:
    """Container/importer handling; expects the attributes PipelineRun defines."""

    ir: PipelineIR
    executor: BaseExecutor
    cache: TaskCache
    _state: dict[str, Any]

    if TYPE_CHECKING:

        def _nodes(self) -> dict[str, dict[str, Any]]:
            raise NotImplementedError

        def _context(self, node: dict[str, Any]) -> RuntimeContext:
            raise NotImplementedError

        def _task_spec(self, node: dict[str, Any]) -> dict[str, Any]:
            raise NotImplementedError

    # ------------------------------------------------------------------ starting

    def _running_steps(self) -> int:
        return sum(
            1
            for n in self._nodes().values()
            if n["kind"] == st.KIND_CONTAINER and n["state"] == st.RUNNING
        )

    def _start_leaf(self, node: dict[str, Any], task: dict[str, Any]) -> bool:
        if self._state["phase"] != st.PHASE_RUNNING:
            return False
        comp = self.ir.component(node["component"])
        executor_spec = self.ir.executors[comp["executorLabel"]]
        if node["kind"] == st.KIND_IMPORTER:
            return self._run_importer(node, executor_spec["importer"])
        limit = self._state.get("maxParallel")
        if limit and self._running_steps() >= limit:
            return False
        container = executor_spec.get("container")
        if container is None:
            kinds = ", ".join(sorted(executor_spec)) or "nothing"
            st.finish(node, st.FAILED, "Unsupported", f"executor kind {kinds} is not supported")
            return True
        try:
            return self._launch_container(node, task, comp, container)
        except (FlowyardError, OSError, ValueError) as exc:
            st.finish(node, st.FAILED, "LaunchError", str(exc))
            return True

    def _launch_container(
        self,
        node: dict[str, Any],
        task: dict[str, Any],
        comp: dict[str, Any],
        container: dict[str, Any],
    ) -> bool:
        node["attempt"] += 1
        node["nextAttemptAt"] = None
        deadline = self.ir.executor_platform(comp["executorLabel"]).get("activeDeadlineSeconds")
        # after a restart between launch and the status write, this attempt's process exists:
        # adopt it (launch is idempotent) and keep its work directory
        adopting = self.executor.knows(
            launch.process_name(self._state["runId"], node["id"], node["attempt"])
        )
        prepared = launch.prepare_step(
            run=self._state,
            node=node,
            component=comp,
            container=container,
            ctx=self._context(node),
            deadline=float(deadline) if deadline else None,
            clear=not adopting,
        )
        node["image"] = container.get("image", "")
        node["executorInput"] = prepared.executor_input
        node["logPath"] = prepared.spec.log_path
        node["preambleSkipped"] = prepared.plan.skipped_preamble
        if node["startedAt"] is None:
            node["startedAt"] = time.time()
        if not adopting and self._cache_enabled(task):
            key = cache_key(prepared.executor_input, comp, container)
            node["cacheFingerprint"] = fingerprint(
                key, (task.get("cachingOptions") or {}).get("cacheKey")
            )
            entry = self.cache.get(self._cache_scope(), node["cacheFingerprint"])
            if entry is not None:
                node["outputs"] = entry["outputs"]
                node["cachedFrom"] = entry.get("source", {})
                with open(prepared.spec.log_path, "a") as log:
                    log.write(f"---- flowyard: {node['id']} cache hit: {node['cachedFrom']} ----\n")
                st.finish(node, st.CACHED, "CacheHit", "outputs reused from an earlier execution")
                return True
        if not adopting:
            prepare_output_dirs(prepared.executor_input, prepared.mount_root)
            with open(prepared.spec.log_path, "a") as log:
                log.write(f"---- flowyard: {node['id']} attempt {node['attempt']} ----\n")
        status = self.executor.launch(prepared.spec)
        node["process"] = prepared.spec.name
        node["state"] = st.RUNNING
        node["processState"] = status.state.value
        return True

    def _cache_enabled(self, task: dict[str, Any]) -> bool:
        options = task.get("cachingOptions") or {}
        return bool(self._state["enableCaching"] and options.get("enableCache"))

    def _cache_scope(self) -> str:
        return f"{self._state['namespace']}/{self._state['pipelineName']}"

    def _run_importer(self, node: dict[str, Any], importer: dict[str, Any]) -> bool:
        node["startedAt"] = time.time()
        try:
            arts = launch.run_importer(
                run=self._state, node=node, importer=importer, ctx=self._context(node)
            )
        except (OSError, ValueError) as exc:
            st.finish(node, st.FAILED, "ImportError", f"importer {node['name']!r}: {exc}")
            return True
        node["outputs"] = {"parameters": {}, "artifacts": arts}
        st.finish(node, st.SUCCEEDED)
        return True

    # ------------------------------------------------------------------ watching

    def _poll_processes(self) -> bool:
        changed = False
        for node in list(self._nodes().values()):
            if node["kind"] != st.KIND_CONTAINER or node["state"] != st.RUNNING:
                continue
            try:
                status = self.executor.status(node["process"])
            except NotFoundError:
                self._attempt_failed(node, "Lost", "the step's process is unknown to the executor")
                changed = True
                continue
            if status.state.value != node.get("processState"):
                node["processState"] = status.state.value
                changed = True
            if status.started_at and not node.get("processStartedAt"):
                node["processStartedAt"] = status.started_at
            if status.state.finished:
                self._process_finished(node, status)
                changed = True
        return changed

    def _process_finished(self, node: dict[str, Any], status: ProcessStatus) -> None:
        node["exitCode"] = status.exit_code
        with contextlib.suppress(FlowyardError):
            self.executor.forget(status.name)
        if status.state == ProcessState.SUCCEEDED:
            comp = self.ir.component(node["component"])
            try:
                params, arts = collect_outputs(comp, node["executorInput"])
            except OutputError as exc:
                self._attempt_failed(node, "OutputError", str(exc))
                return
            node["outputs"] = {"parameters": params, "artifacts": arts}
            st.finish(node, st.SUCCEEDED)
            if node.get("cacheFingerprint"):
                source = {"runId": self._state["runId"], "taskId": node["id"]}
                self.cache.put(
                    self._cache_scope(), node["cacheFingerprint"], node["outputs"], source
                )
            return
        if status.state == ProcessState.KILLED and self._state["phase"] == st.PHASE_CANCELING:
            st.finish(node, st.CANCELED, st.RUN_TERMINATED, "killed: run terminated")
            return
        reason = status.reason or status.state.value
        detail = status.message or (
            f"exit code {status.exit_code}" if status.exit_code is not None else status.state.value
        )
        self._attempt_failed(node, reason, detail)

    def _attempt_failed(self, node: dict[str, Any], reason: str, message: str) -> None:
        policy = self._task_spec(node).get("retryPolicy") or {}
        retries = int(policy.get("maxRetryCount") or 0)
        node.setdefault("attemptErrors", []).append(message)
        if node["attempt"] <= retries and self._state["phase"] == st.PHASE_RUNNING:
            node["state"] = st.PENDING
            node["reason"] = "RetryScheduled"
            node["message"] = message
            node["process"] = None
            node["nextAttemptAt"] = time.time() + retry_delay(policy, node["attempt"])
            return
        st.finish(node, st.FAILED, reason, message)

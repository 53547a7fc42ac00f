"""The life of a Pod node: launch through the executor, watch, collect outputs, retry.

Attempt ``n`` of a node runs as process ``pods.process_name(uid, node, n)``. The name is stable,
so an engine rebuilt after a control-plane restart finds the running process by it; and when the
control plane died between launching attempt ``n`` and storing that fact, launching attempt ``n``
again adopts the existing process (the executor's launch is idempotent) without touching its
directory. ``retryStrategy`` (``limit``, ``retryPolicy``, ``backoff.duration/factor/cap``)
retries a failed attempt; ``spec.parallelism`` caps the running pods.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from flowyard.errors import FlowyardError, NotFoundError
from flowyard.executors.base import ProcessState
from flowyard.pipelines.argo import expr, pods
from flowyard.pipelines.argo.nodes import RunBase
from flowyard.pipelines.argo.scope import Scope
from flowyard.pipelines.steps import retry_delay


class PodMixin(RunBase):
    """Pod nodes."""

    def _advance_pod(self, node: dict[str, Any]) -> bool:
        x = node["x"]
        if node["phase"] == "Pending":
            if x.get("nextAttemptAt") and time.time() < x["nextAttemptAt"]:
                return False
            if not self._may_start_pod():
                return False
            return self._launch(node)
        try:
            status = self.executor.status(x["process"])
        except NotFoundError:
            return self._attempt_failed(node, "the step's process is unknown to the executor")
        if not status.state.finished:
            return False
        with contextlib.suppress(FlowyardError):
            self.executor.forget(status.name)
        node.setdefault("outputs", {})["exitCode"] = str(status.exit_code)
        if status.state != ProcessState.SUCCEEDED:
            detail = status.message or f"Error (exit code {status.exit_code})"
            return self._attempt_failed(node, detail)
        template = self._substituted(node)
        artifact_dir = Path(self.status["flowyard"]["runDir"]) / "artifacts"
        try:
            params, arts, result = pods.collect(
                template,
                self.status["flowyard"]["runDir"],
                node["id"],
                artifact_dir,
                x["logPath"],
            )
        except (ValueError, OSError) as exc:
            return self._attempt_failed(node, str(exc))
        node["outputs"].update(parameters=params, artifacts=arts, result=result)
        self._finish(node, "Succeeded")
        return True

    def _may_start_pod(self) -> bool:
        limit = self.spec.get("parallelism")
        if not limit:
            return True
        running = sum(
            1 for n in self.nodes.values() if n["type"] == "Pod" and n["phase"] == "Running"
        )
        return running < int(limit)

    def _substituted(self, node: dict[str, Any]) -> dict[str, Any]:
        template = self.templates[node["templateName"]]
        scope = Scope(self, None, inputs=node.get("inputs") or {})
        out: dict[str, Any] = expr.substitute_all(template, scope.lookup)
        return out

    def _launch(self, node: dict[str, Any]) -> bool:
        x = node["x"]
        x["attempt"] = x.get("attempt", 0) + 1
        node["attempt"] = x["attempt"]
        template = self._substituted(node)
        inputs = {
            a["path"]: a["uri"]
            for a in (node.get("inputs") or {}).get("artifacts") or []
            if a.get("path") and a.get("uri")
        }
        # a restart between launch and the status write: adopt, never clear its directory
        adopting = self.executor.knows(pods.process_name(self.uid, node["id"], x["attempt"]))
        try:
            spec = pods.build_spec(
                template=template,
                node=node,
                uid=self.uid,
                run_dir=self.status["flowyard"]["runDir"],
                log_dir=self.log_dir,
                labels={**self.labels, "workflows.argoproj.io/node": pods.safe(node["id"])},
                input_files=inputs,
                prepare=not adopting,
            )
            if not adopting:
                Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
                with open(spec.log_path, "a") as log:
                    log.write(f"---- flowyard: {node['displayName']} attempt {x['attempt']} ----\n")
            self.executor.launch(spec)
        except (FlowyardError, OSError, ValueError) as exc:
            self._finish(node, "Error", str(exc))
            return True
        x.update(process=spec.name, logPath=spec.log_path, nextAttemptAt=None)
        node["image"] = (template.get("container") or template.get("script") or {}).get("image")
        self._start(node)
        return True

    def _attempt_failed(self, node: dict[str, Any], message: str) -> bool:
        template = self.templates[node["templateName"]]
        strategy = template.get("retryStrategy") or {}
        limit = int(str(strategy.get("limit", 0) or 0))
        policy = strategy.get("retryPolicy", "OnFailure")
        x = node["x"]
        x.setdefault("errors", []).append(message)
        terminating = self.status["flowyard"].get("terminating")
        if strategy and x["attempt"] <= limit and policy != "OnTransientError" and not terminating:
            backoff = strategy.get("backoff") or {}
            delay = retry_delay(
                {
                    "backoffDuration": seconds(backoff.get("duration"), 0.0),
                    "backoffFactor": float(str(backoff.get("factor") or 2)),
                    "backoffMaxDuration": seconds(
                        backoff.get("cap") or backoff.get("maxDuration"), 3600.0
                    ),
                },
                x["attempt"],
            )
            node.update(phase="Pending", message=f"retrying: {message}")
            x.update(process=None, nextAttemptAt=time.time() + delay)
            return True
        self._finish(node, "Failed", message)
        return True

    def next_wakeup(self) -> float:
        """Seconds until the earliest scheduled retry (1.0 when none is scheduled)."""
        waits = [
            n["x"]["nextAttemptAt"] - time.time()
            for n in self.nodes.values()
            if n["phase"] == "Pending" and n.get("x", {}).get("nextAttemptAt")
        ]
        return max(min(waits), 0.0) if waits else 1.0


def seconds(value: Any, default: float) -> float:
    """An Argo duration (``"10"``, ``"30s"``, ``"2m"``, ``"1h"``) in seconds."""
    if value in (None, ""):
        return default
    text = str(value).strip()
    units = {"s": 1, "m": 60, "h": 3600}
    if text[-1:] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)

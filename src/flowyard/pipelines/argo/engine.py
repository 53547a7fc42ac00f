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
"""

from __future__ import annotations

import contextlib
import datetime
import json
import time
from pathlib import Path
from typing import Any

from flowyard import config
from flowyard.errors import FlowyardError, NotFoundError
from flowyard.executors.base import BaseExecutor, ProcessState
from flowyard.pipelines.argo import expr, pods
from flowyard.pipelines.argo.model import template_type
from flowyard.pipelines.argo.scope import Scope, aggregate_outputs, resolve_arguments
from flowyard.pipelines.cel import CelError
from flowyard.pipelines.steps import retry_delay

FINAL = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted"})
FAILED = frozenset({"Failed", "Error"})
_MAX_ROUNDS = 1000


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WorkflowRun:
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
        self.spec: dict[str, Any] = workflow["spec"]
        self.templates = {t["name"]: t for t in self.spec.get("templates") or []}
        self.executor = executor
        self.labels = labels
        self.log_dir = log_dir
        md = workflow["metadata"]
        self.uid = str(md.get("uid") or md["name"])
        status = workflow.get("status") or {}
        self.status: dict[str, Any] = json.loads(json.dumps(status)) if status.get("nodes") else {}
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

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        nodes: dict[str, dict[str, Any]] = self.status["nodes"]
        return nodes

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

    # -- building nodes --------------------------------------------------------------------
    def _wf_params(self) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = (self.spec.get("arguments") or {}).get("parameters") or []
        return params

    def _new_node(
        self, name: str, display: str, kind: str, template: str, parent: str | None
    ) -> dict[str, Any]:
        wf_name = self.wf["metadata"]["name"]
        node_id = _stable_id(wf_name, name) if name != wf_name else wf_name
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

    def _advance_group(self, node: dict[str, Any]) -> bool:
        changed = False
        for child in node["children"]:
            changed |= self._advance(self.nodes[child])
        kids = [self.nodes[c] for c in node["children"]]
        if all(k["phase"] in FINAL for k in kids):
            failed = [
                k for k in kids if k["phase"] in FAILED and not k["x"].get("continueOnFailed")
            ]
            if failed:
                self._finish(node, "Failed", f"child '{failed[0]['displayName']}' failed")
            else:
                self._finish(node, "Succeeded")
            node["outputs"] = aggregate_outputs(kids) if node["x"].get("expanded") else {}
            return True
        return changed

    def _advance_steps(self, node: dict[str, Any]) -> bool:
        self._start(node)
        template = self.templates[node["templateName"]]
        groups = template.get("steps") or []
        x = node["x"]
        index = x.setdefault("group", 0)
        changed = False
        if index < len(groups) and len(node["children"]) <= index:
            group = self._new_node(
                f"{node['name']}[{index}]",
                f"[{index}]",
                "StepGroup",
                node["templateName"],
                node["id"],
            )
            self._start(group)
            for step in groups[index] or []:
                self._spawn(node, group, step, f"{node['name']}[{index}].{step['name']}")
            changed = True
        if index < len(groups):
            group = self.nodes[node["children"][index]]
            changed |= self._advance(group)
            if group["phase"] in FINAL:
                if group["phase"] in FAILED:
                    self._finish(node, "Failed", group["message"])
                    return True
                x["group"] = index + 1
                return True
            return changed
        self._complete_container(node, template)
        return True

    def _advance_dag(self, node: dict[str, Any]) -> bool:
        self._start(node)
        template = self.templates[node["templateName"]]
        tasks = (template.get("dag") or {}).get("tasks") or []
        x = node["x"]
        created: dict[str, str] = x.setdefault("named", {})
        changed = False
        failed_any = any(
            self.nodes[n]["phase"] in FAILED and not self.nodes[n]["x"].get("continueOnFailed")
            for n in created.values()
        )
        for task in tasks:
            if task["name"] in created:
                continue
            ready = self._dag_ready(task, created)
            if ready is None:
                continue
            if ready is False or failed_any:
                omitted = self._new_node(
                    f"{node['name']}.{task['name']}",
                    task["name"],
                    "Skipped",
                    task.get("template", ""),
                    node["id"],
                )
                self._finish(
                    omitted,
                    "Omitted",
                    "dependencies not met"
                    if not ready
                    else "not scheduled: an earlier task failed",
                )
                created[task["name"]] = omitted["id"]
            else:
                child = self._spawn(node, node, task, f"{node['name']}.{task['name']}")
                created[task["name"]] = child["id"]
            changed = True
        for child_id in list(created.values()):
            changed |= self._advance(self.nodes[child_id])
        kids = [self.nodes[c] for c in created.values()]
        if len(created) == len(tasks) and all(k["phase"] in FINAL for k in kids):
            bad = [k for k in kids if k["phase"] in FAILED and not k["x"].get("continueOnFailed")]
            if bad:
                self._finish(node, "Failed", f"task '{bad[0]['displayName']}' failed")
            else:
                self._complete_container(node, template)
            return True
        return changed

    def _dag_ready(self, task: dict[str, Any], created: dict[str, str]) -> bool | None:
        """None: wait; True: run; False: dependencies not satisfied (Omitted)."""
        depends = task.get("depends")
        deps = list(task.get("dependencies") or [])
        if depends:
            import re

            deps = sorted(
                set(re.findall(r"[A-Za-z0-9_-]+(?=\.|\b)", depends))
                & {t["name"] for t in self._sibling_tasks(task)}
            )
        for dep in deps:
            if dep not in created or self.nodes[created[dep]]["phase"] not in FINAL:
                return None
        if depends:
            return _depends_true(depends, {d: self.nodes[created[d]] for d in deps})
        return all(self.nodes[created[d]]["phase"] in ("Succeeded", "Skipped") for d in deps)

    def _sibling_tasks(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        for template in self.templates.values():
            tasks = (template.get("dag") or {}).get("tasks") or []
            if any(t is task for t in tasks):
                return list(tasks)
        return []

    # -- spawning steps/tasks ----------------------------------------------------------------
    def _spawn(
        self, owner: dict[str, Any], parent: dict[str, Any], step: dict[str, Any], name: str
    ) -> dict[str, Any]:
        """A step/task invocation: skipped by ``when``, expanded by ``withItems``/``withParam``."""
        scope = self._scope(owner)
        items = self._items(step, scope)
        if items is None:
            return self._one(owner, parent, step, name, step["name"], scope)
        group = self._new_node(
            name, step["name"], "TaskGroup", step.get("template", ""), parent["id"]
        )
        group["x"]["expanded"] = True
        self._start(group)
        for i, item in enumerate(items):
            label = item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))
            self._one(
                owner,
                group,
                step,
                f"{name}({i}:{label})",
                f"{step['name']}({i}:{label})",
                scope.with_item(item),
            )
        if owner is not parent:
            owner["x"].setdefault("named", {})[step["name"]] = group["id"]
        return group

    def _items(self, step: dict[str, Any], scope: Scope) -> list[Any] | None:
        if "withItems" in step:
            return list(step["withItems"] or [])
        if "withParam" in step:
            text = expr.substitute(str(step["withParam"]), scope.lookup)
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if not isinstance(value, list):
                raise ValueError(f"withParam of {step['name']!r} is not a JSON list: {text[:200]}")
            return value
        return None

    def _one(
        self,
        owner: dict[str, Any],
        parent: dict[str, Any],
        step: dict[str, Any],
        name: str,
        display: str,
        scope: Scope,
    ) -> dict[str, Any]:
        if step.get("when"):
            try:
                run = expr.evaluate_when(str(step["when"]), scope.lookup, scope.env())
            except CelError as exc:
                node = self._new_node(
                    name, display, "Skipped", step.get("template", ""), parent["id"]
                )
                self._finish(node, "Error", f"when {step['when']!r}: {exc}")
                return self._named(owner, parent, step, node)
            if not run:
                node = self._new_node(
                    name, display, "Skipped", step.get("template", ""), parent["id"]
                )
                self._finish(node, "Skipped", f"when '{step['when']}' evaluated false")
                return self._named(owner, parent, step, node)
        args = step.get("arguments") or {}
        params = {
            p["name"]: expr.substitute(str(p.get("value", "")), scope.lookup)
            for p in args.get("parameters") or []
        }
        arts = {a["name"]: scope.artifact(a) for a in args.get("artifacts") or []}
        node = self._invoke(step["template"], name, display, parent["id"], params, arts)
        node["x"]["continueOnFailed"] = bool((step.get("continueOn") or {}).get("failed"))
        return self._named(owner, parent, step, node)

    def _named(
        self,
        owner: dict[str, Any],
        parent: dict[str, Any],
        step: dict[str, Any],
        node: dict[str, Any],
    ) -> dict[str, Any]:
        if owner is parent or parent["type"] == "StepGroup":
            owner["x"].setdefault("named", {})[step["name"]] = node["id"]
        return node

    def _scope(self, owner: dict[str, Any] | None) -> Scope:
        return Scope(self, owner)

    # -- pods ------------------------------------------------------------------------------
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
        try:
            spec = pods.build_spec(
                template=template,
                node=node,
                uid=self.uid,
                run_dir=self.status["flowyard"]["runDir"],
                log_dir=self.log_dir,
                labels={**self.labels, "workflows.argoproj.io/node": pods.safe(node["id"])},
                input_files=inputs,
            )
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
                    "backoffDuration": _seconds(backoff.get("duration"), 0.0),
                    "backoffFactor": float(str(backoff.get("factor") or 2)),
                    "backoffMaxDuration": _seconds(
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
        waits = [
            n["x"]["nextAttemptAt"] - time.time()
            for n in self.nodes.values()
            if n["phase"] == "Pending" and n.get("x", {}).get("nextAttemptAt")
        ]
        return max(min(waits), 0.0) if waits else 1.0

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

    def failures(self) -> list[dict[str, Any]]:
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


def _stable_id(wf_name: str, name: str) -> str:
    import hashlib

    return f"{wf_name}-{int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)}"


def _seconds(value: Any, default: float) -> float:
    if value in (None, ""):
        return default
    text = str(value).strip()
    units = {"s": 1, "m": 60, "h": 3600}
    if text[-1:] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def _depends_true(depends: str, nodes: dict[str, dict[str, Any]]) -> bool:
    """Argo's ``depends`` logic: ``A``, ``A.Succeeded``, ``A.Failed``, ``A.Skipped``,
    ``A.Errored``, ``A.Omitted``, ``A.AnySucceeded``, ``A.AllFailed``, with ``&& || !``."""
    import re

    def value(match: re.Match[str]) -> str:
        name, _, attr = match.group(0).partition(".")
        phase = nodes[name]["phase"] if name in nodes else "Omitted"
        ok = {
            "": phase in ("Succeeded", "Skipped"),
            "Succeeded": phase == "Succeeded",
            "Failed": phase == "Failed",
            "Errored": phase == "Error",
            "Skipped": phase == "Skipped",
            "Omitted": phase == "Omitted",
            "Daemoned": False,
            "AnySucceeded": phase == "Succeeded",
            "AllFailed": phase == "Failed",
        }.get(attr, False)
        return "true" if ok else "false"

    names = "|".join(re.escape(n) for n in sorted(nodes, key=len, reverse=True))
    text = (
        re.sub(rf"(?<![A-Za-z0-9_-])(?:{names})(?:\.[A-Za-z]+)?(?![A-Za-z0-9_-])", value, depends)
        if names
        else depends
    )
    from flowyard.pipelines import cel

    return bool(cel._Parser(text, {}).parse())

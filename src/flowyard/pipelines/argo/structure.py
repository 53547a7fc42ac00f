"""Advancing the structural nodes of a Workflow: ``steps`` templates, ``dag`` templates and
the groups (StepGroup, TaskGroup) under them.

``steps`` groups run in order, the steps of a group in parallel, and the first failed group
fails the Steps node. ``dag`` tasks start when their ``dependencies``/``depends`` are met; a
task whose dependencies cannot be met, or any task not yet started after a task failed (Argo's
failFast), is ``Omitted``. A group ends when all its children ended; with ``continueOn.failed``
a failed child does not fail it.
"""

from __future__ import annotations

import re
from typing import Any

from flowyard.pipelines import cel
from flowyard.pipelines.argo.nodes import FAILED, FINAL, RunBase


class StructureMixin(RunBase):
    """Steps/DAG/group nodes; expects the pod and spawn parts of the run."""

    def _advance_group(self, node: dict[str, Any]) -> bool:
        from flowyard.pipelines.argo.scope import aggregate_outputs

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
        created: dict[str, str] = node["x"].setdefault("named", {})
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
                self._omit(node, task, created, "dependencies not met" if not ready else None)
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

    def _omit(
        self,
        dag: dict[str, Any],
        task: dict[str, Any],
        created: dict[str, str],
        message: str | None,
    ) -> None:
        omitted = self._new_node(
            f"{dag['name']}.{task['name']}",
            task["name"],
            "Skipped",
            task.get("template", ""),
            dag["id"],
        )
        self._finish(omitted, "Omitted", message or "not scheduled: an earlier task failed")
        created[task["name"]] = omitted["id"]

    def _dag_ready(self, task: dict[str, Any], created: dict[str, str]) -> bool | None:
        """None: wait; True: run; False: dependencies not satisfied (Omitted)."""
        depends = task.get("depends")
        deps = list(task.get("dependencies") or [])
        if depends:
            deps = sorted(
                set(re.findall(r"[A-Za-z0-9_-]+(?=\.|\b)", depends))
                & {t["name"] for t in self._sibling_tasks(task)}
            )
        for dep in deps:
            if dep not in created or self.nodes[created[dep]]["phase"] not in FINAL:
                return None
        if depends:
            return depends_true(depends, {d: self.nodes[created[d]] for d in deps})
        return all(self.nodes[created[d]]["phase"] in ("Succeeded", "Skipped") for d in deps)

    def _sibling_tasks(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        for template in self.templates.values():
            tasks = (template.get("dag") or {}).get("tasks") or []
            if any(t is task for t in tasks):
                return list(tasks)
        return []


def depends_true(depends: str, nodes: dict[str, dict[str, Any]]) -> bool:
    """Argo's ``depends`` logic: ``A``, ``A.Succeeded``, ``A.Failed``, ``A.Skipped``,
    ``A.Errored``, ``A.Omitted``, ``A.AnySucceeded``, ``A.AllFailed``, with ``&& || !``."""

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
    return bool(cel._Parser(text, {}).parse())

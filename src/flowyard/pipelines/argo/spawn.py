"""Turning one step (of a ``steps`` group) or one ``dag`` task into child nodes.

``when`` false gives a ``Skipped`` node (an unparsable condition an ``Error`` one);
``withItems``/``withParam`` expand the step into a TaskGroup with one child per item, named
``step(i:item)``; otherwise the step's ``arguments`` are substituted in the owner's scope and the
template is invoked. The owner (a Steps or DAG node) remembers its children by step name in
``x.named``, which is what ``steps.NAME``/``tasks.NAME`` references resolve against.
"""

from __future__ import annotations

import json
from typing import Any

from flowyard.pipelines.argo import expr
from flowyard.pipelines.argo.nodes import RunBase
from flowyard.pipelines.argo.scope import Scope
from flowyard.pipelines.cel import CelError


class SpawnMixin(RunBase):
    """Step/task invocation."""

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

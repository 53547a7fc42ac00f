"""What ``{{...}}`` names resolve to inside one template invocation, and input resolution."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowyard.pipelines.argo import expr

if TYPE_CHECKING:
    from flowyard.pipelines.argo.nodes import RunBase


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


class Scope:
    """Names visible in a template: ``inputs.*`` (``inputs`` or the owner node's), the owner's
    children as ``steps.NAME.*``/``tasks.NAME.*``, ``item``, ``workflow.*`` and ``pod.name``."""

    def __init__(
        self,
        run: RunBase,
        owner: dict[str, Any] | None,
        *,
        inputs: dict[str, Any] | None = None,
        item: Any = None,
        has_item: bool = False,
    ) -> None:
        self.run = run
        self.owner = owner
        self.inputs = inputs if inputs is not None else ((owner or {}).get("inputs") or {})
        self.item = item
        self.has_item = has_item

    def with_item(self, item: Any) -> Scope:
        return Scope(self.run, self.owner, inputs=self.inputs, item=item, has_item=True)

    # -- lookups ---------------------------------------------------------------------------
    def lookup(self, name: str) -> str | None:
        head, _, rest = name.partition(".")
        if head == "item" and self.has_item:
            if not rest:
                return _text(self.item)
            value = self.item
            for part in rest.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return None if value is None else _text(value)
        if head == "inputs":
            return self._inputs(rest)
        if head == "workflow":
            return self._workflow(rest)
        if head in ("steps", "tasks"):
            return self._child(rest)
        return None

    def _inputs(self, rest: str) -> str | None:
        kind, _, tail = rest.partition(".")
        if kind == "parameters":
            for p in self.inputs.get("parameters") or []:
                if p["name"] == tail:
                    return str(p.get("value", ""))
        if kind == "artifacts":
            name, _, attr = tail.partition(".")
            for a in self.inputs.get("artifacts") or []:
                if a["name"] == name and attr == "path":
                    return str(a.get("path"))
        return None

    def _workflow(self, rest: str) -> str | None:
        run = self.run
        md = run.wf["metadata"]
        params = {p["name"]: str(p.get("value", "")) for p in run._wf_params()}
        if rest.startswith("parameters."):
            key = rest.removeprefix("parameters.")
            if key == "json":
                return json.dumps([{"name": k, "value": v} for k, v in params.items()])
            return params.get(key)
        book = run.status["flowyard"]
        values = {
            "name": md["name"],
            "namespace": md.get("namespace") or "default",
            "uid": str(md.get("uid") or ""),
            "creationTimestamp": md.get("creationTimestamp") or "",
            "status": book.get("entryPhase") or run.status["phase"],
            "failures": json.dumps(run.failures()),
            "duration": f"{time.time() - (book.get('startedAtTs') or time.time()):.6f}",
            "parameters": json.dumps(params),
        }
        return values.get(rest)

    def _child(self, rest: str) -> str | None:
        name, _, path = rest.partition(".")
        node = self._named(name)
        if node is None:
            return None
        outputs = node.get("outputs") or {}
        if path == "outputs.result":
            return outputs.get("result")
        if path in ("status", "phase"):
            return str(node["phase"])
        if path == "exitCode":
            return outputs.get("exitCode")
        if path.startswith("outputs.parameters."):
            key = path.removeprefix("outputs.parameters.")
            for p in outputs.get("parameters") or []:
                if p["name"] == key:
                    return str(p.get("value"))
        if path.startswith("outputs.artifacts."):
            key = path.removeprefix("outputs.artifacts.")
            for a in outputs.get("artifacts") or []:
                if a["name"] == key:
                    return str(a.get("uri"))
        return None

    def _named(self, name: str) -> dict[str, Any] | None:
        if self.owner is None:
            return None
        node_id = (self.owner.get("x") or {}).get("named", {}).get(name)
        return self.run.nodes.get(node_id) if node_id else None

    def env(self) -> dict[str, Any]:
        """Variables for the expr form of ``when``."""
        params = {p["name"]: str(p.get("value", "")) for p in self.inputs.get("parameters") or []}
        wf_params = {p["name"]: str(p.get("value", "")) for p in self.run._wf_params()}
        wf_params["json"] = self._workflow("parameters.json") or "[]"
        children: dict[str, Any] = {}
        for name, node_id in ((self.owner or {}).get("x") or {}).get("named", {}).items():
            node = self.run.nodes[node_id]
            outs = node.get("outputs") or {}
            children[name] = {
                "status": node["phase"],
                "outputs": {
                    "result": outs.get("result"),
                    "parameters": {p["name"]: p.get("value") for p in outs.get("parameters") or []},
                },
            }
        env = {
            "inputs": {"parameters": params},
            "workflow": {
                "parameters": wf_params,
                "name": self.run.wf["metadata"]["name"],
                "status": self._workflow("status"),
            },
            "steps": children,
            "tasks": children,
        }
        if self.has_item:
            env["item"] = self.item
        return env

    # -- artifacts -------------------------------------------------------------------------
    def artifact(self, arg: dict[str, Any]) -> str:
        """The stored file of an artifact argument (``from``, ``raw.data``)."""
        if arg.get("from"):
            ref = str(arg["from"]).strip()
            inner = ref[2:-2].strip() if ref.startswith("{{") and ref.endswith("}}") else ref
            value = self.lookup(inner)
            if value is None:
                raise ValueError(f"artifact {arg.get('name')!r}: {ref} does not resolve")
            return value
        if "raw" in arg:
            data = expr.substitute(str((arg["raw"] or {}).get("data", "")), self.lookup)
            digest = hashlib.sha1(data.encode()).hexdigest()[:16]
            path = Path(self.run.status["flowyard"]["runDir"]) / "raw" / digest
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data)
            return str(path)
        raise ValueError(
            f"artifact {arg.get('name')!r}: only 'from' and 'raw' sources are supported"
        )


def resolve_arguments(
    template: dict[str, Any], params: dict[str, str], artifacts: dict[str, str], scope: Scope
) -> dict[str, Any]:
    """A template's ``inputs`` with values: arguments, else ``value``/``default``; ValueError
    names a missing one."""
    inputs = template.get("inputs") or {}
    out_params = []
    for p in inputs.get("parameters") or []:
        name = p["name"]
        if name in params:
            value = params[name]
        elif "value" in p:
            value = expr.substitute(str(p["value"]), scope.lookup)
        elif "default" in p:
            value = str(p["default"])
        else:
            raise ValueError(
                f"template {template['name']!r}: input parameter {name!r} has no value "
                "(pass it in arguments.parameters)"
            )
        out_params.append({"name": name, "value": value})
    out_arts = []
    for a in inputs.get("artifacts") or []:
        uri = artifacts.get(a["name"])
        if uri is None and ("raw" in a or a.get("from")):
            uri = scope.artifact(a)
        if uri is None and not a.get("optional"):
            raise ValueError(
                f"template {template['name']!r}: input artifact {a['name']!r} has no source"
            )
        out_arts.append({"name": a["name"], "path": a.get("path"), "uri": uri})
    return {"parameters": out_params, "artifacts": out_arts}


def aggregate_outputs(kids: list[dict[str, Any]]) -> dict[str, Any]:
    """Outputs of an expanded step: each parameter (and ``result``) as a JSON list."""
    names: list[str] = []
    for kid in kids:
        for p in (kid.get("outputs") or {}).get("parameters") or []:
            if p["name"] not in names:
                names.append(p["name"])

    def values(name: str) -> list[Any]:
        out = []
        for kid in kids:
            for p in (kid.get("outputs") or {}).get("parameters") or []:
                if p["name"] == name:
                    out.append(_maybe_json(p.get("value")))
        return out

    results = [
        _maybe_json((k.get("outputs") or {}).get("result"))
        for k in kids
        if (k.get("outputs") or {}).get("result") is not None
    ]
    return {
        "parameters": [{"name": n, "value": json.dumps(values(n))} for n in names],
        "result": json.dumps(results),
    }


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value

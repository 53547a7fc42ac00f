"""InferenceGraph execution: KServe's graph router, on the serving router's event loop.

A graph is served on its own loopback port (``status.url``); any ``POST`` runs the ``root``
node on the request body. Node semantics are KServe's:

* ``Sequence``: steps in order. A step's input is the graph's request (``data`` empty or
  ``$request``) or the previous step's response (``$response``; with
  ``mapPredictionsToInstances: true`` a ``{"predictions": X}`` answer becomes
  ``{"instances": X}``). A step ``condition`` is tested on the previous response (the request
  for the first step); when it does not match, the sequence stops and returns that response.
  A failing step with ``dependency: Hard`` stops the sequence with its answer; the result is
  the last step's answer.
* ``Splitter``: one step picked at random by ``weight`` (weights sum to 100).
* ``Ensemble``: all steps at once on the request; the answer is ``{stepName: response}`` (the
  step's ``name``, else its index); a ``Hard`` step that fails makes the graph answer its error.
* ``Switch``: the first step whose ``condition`` matches the request (an empty condition always
  matches); none: 404 ``{"error": ...}``.

A step calls ``nodeName`` (another node of the graph), ``serviceName`` (the InferenceService's
``status.url`` + ``/v1/models/<serviceName>:predict``, resolved by the controller) or
``serviceUrl`` (http on loopback). Headers of the request are passed on. Conditions use
:mod:`flowyard.serving.graph_expr`.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from flowyard.serving import graph_expr
from flowyard.serving.proxy import Request, Response, UpstreamPool, json_response

MAX_DEPTH = 32  # node-to-node calls; a cycle is refused at admission, this bounds the rest


@dataclass
class Step:
    name: str
    node: str | None = None
    url: str | None = None  # resolved service URL; None with ``missing`` set: not ready
    missing: str | None = None
    data: str = "$request"
    condition: str = ""
    weight: int = 0
    hard: bool = False
    map_predictions: bool = False


@dataclass
class Node:
    router_type: str
    steps: list[Step] = field(default_factory=list)


@dataclass
class Graph:
    nodes: dict[str, Node]
    timeout: float = 300.0


def compile_graph(spec: dict[str, Any], urls: dict[str, str | None], timeout: float) -> Graph:
    """The executable graph of ``spec``; ``urls`` maps a serviceName to its predict URL
    (None: the service is not ready, the step answers 503)."""
    nodes = {}
    for node_name, node in (spec.get("nodes") or {}).items():
        steps = []
        for i, raw in enumerate(node.get("steps") or []):
            step = Step(
                name=str(raw.get("name") or i),
                node=raw.get("nodeName"),
                data=str(raw.get("data") or "$request"),
                condition=str(raw.get("condition") or ""),
                weight=int(raw.get("weight") or 0),
                hard=raw.get("dependency") == "Hard",
                map_predictions=bool(raw.get("mapPredictionsToInstances")),
            )
            if raw.get("serviceUrl"):
                step.url = str(raw["serviceUrl"])
            elif raw.get("serviceName"):
                step.url = urls.get(raw["serviceName"])
                if step.url is None:
                    step.missing = f"InferenceService {raw['serviceName']!r} is not ready"
            steps.append(step)
        nodes[node_name] = Node(str(node.get("routerType")), steps)
    return Graph(nodes, timeout)


def _ok(status: int) -> bool:
    return 200 <= status < 300


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


class GraphRunner:
    """Runs requests through one graph; ``graph`` is replaced by the controller."""

    def __init__(self, name: str, graph: Graph, upstream: UpstreamPool) -> None:
        self.name = name
        self.graph = graph
        self.upstream = upstream

    async def handle(self, request: Request) -> Response:
        if request.method != b"POST":
            return _error(405, f"InferenceGraph {self.name}: POST the request body to run it")
        headers = [(k, v) for k, v in request.headers if k != b"content-type"]
        headers.append((b"content-type", b"application/json"))
        graph = self.graph  # one version of the graph for the whole request
        try:
            return await self._node(graph, "root", request.body, headers, 0)
        except ValueError as exc:  # a condition flowyard cannot evaluate
            return _error(500, f"InferenceGraph {self.name}: {exc}")

    async def _node(
        self, graph: Graph, name: str, body: bytes, headers: list[Any], depth: int
    ) -> Response:
        node = graph.nodes.get(name)
        if node is None:
            return _error(500, f"InferenceGraph {self.name}: no node {name!r}")
        if depth > MAX_DEPTH:
            return _error(500, f"InferenceGraph {self.name}: nodes nested deeper than {MAX_DEPTH}")
        runner = {
            "Sequence": self._sequence,
            "Splitter": self._splitter,
            "Ensemble": self._ensemble,
            "Switch": self._switch,
        }.get(node.router_type)
        if runner is None:
            return _error(500, f"node {name!r}: unknown routerType {node.router_type!r}")
        return await runner(graph, node, body, headers, depth)

    async def _step(
        self, graph: Graph, step: Step, body: bytes, headers: list[Any], depth: int
    ) -> Response:
        if step.node:
            return await self._node(graph, step.node, body, headers, depth + 1)
        if step.url is None:
            return _error(503, step.missing or f"step {step.name}: no target")
        parts = urlsplit(step.url)
        if parts.scheme != "http" or not parts.hostname:
            return _error(500, f"step {step.name}: only http:// service URLs are supported")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        port = parts.port or 80
        host = parts.netloc.encode()
        request = Request(b"POST", target.encode(), list(headers), host, body)
        try:
            return await self.upstream.request(parts.hostname, port, request, graph.timeout)
        except TimeoutError:
            return _error(504, f"step {step.name}: {step.url} did not answer in time")
        except OSError as exc:
            return _error(502, f"step {step.name}: {step.url} failed: {exc}")

    async def _sequence(
        self, graph: Graph, node: Node, body: bytes, headers: list[Any], depth: int
    ) -> Response:
        last: Response | None = None
        for step in node.steps:
            if step.condition:
                seen = last.body if last is not None else body
                if not graph_expr.exists(_parse(seen), step.condition):
                    return last if last is not None else json_response(200, _parse(body))
            payload = body
            if step.data == "$response" and last is not None:
                payload = _map_predictions(last.body) if step.map_predictions else last.body
            last = await self._step(graph, step, payload, headers, depth)
            if step.hard and not _ok(last.status):
                return last
        return last if last is not None else _error(500, "Sequence node without steps")

    async def _splitter(
        self, graph: Graph, node: Node, body: bytes, headers: list[Any], depth: int
    ) -> Response:
        point = random.randint(1, 100)
        for step in node.steps:
            point -= step.weight
            if point <= 0:
                return await self._step(graph, step, body, headers, depth)
        return _error(500, "Splitter weights do not add up to 100")

    async def _ensemble(
        self, graph: Graph, node: Node, body: bytes, headers: list[Any], depth: int
    ) -> Response:
        answers = await asyncio.gather(
            *(self._step(graph, step, body, headers, depth) for step in node.steps)
        )
        merged: dict[str, Any] = {}
        for step, answer in zip(node.steps, answers, strict=True):
            if step.hard and not _ok(answer.status):
                return answer
            merged[step.name] = _parse(answer.body)
        return json_response(200, merged)

    async def _switch(
        self, graph: Graph, node: Node, body: bytes, headers: list[Any], depth: int
    ) -> Response:
        doc = _parse(body)
        for step in node.steps:
            if not step.condition or graph_expr.exists(doc, step.condition):
                return await self._step(graph, step, body, headers, depth)
        return _error(404, "None of the routes matched with the switch condition")


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def _map_predictions(body: bytes) -> bytes:
    doc = _parse(body)
    if isinstance(doc, dict) and "predictions" in doc:
        return orjson.dumps({"instances": doc["predictions"]})
    return body

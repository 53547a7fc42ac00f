"""InferenceGraph end to end through a real control plane: the upstream Sequence sample applied
unchanged (its gs:// models mapped to models trained here), and Splitter, Ensemble, Switch and a
``$response`` Sequence over two custom-model InferenceServices."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.serving.conftest import MODELS_DIR
from tests.serving.isvc_support import EXAMPLES, cli, condition, predict, stop_replicas, wait_ready
from tests.serving.test_isvc_samples import ROWS, _train
from tests.support.server import RunningServer

pytestmark = [
    pytest.mark.skipif(not EXAMPLES.is_dir(), reason="upstream reference data missing"),
    pytest.mark.timeout(240),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    mapping = ";".join(f"{k}={v}" for k, v in _train(tmp_path_factory.mktemp("buckets")).items())
    srv = RunningServer(
        tmp_path_factory.mktemp("home"), extra_env={"FLOWYARD_STORAGE_URI_MAP": mapping}
    ).start()
    yield srv
    srv.stop()
    stop_replicas(srv.home)


def _graph(server: RunningServer, name: str) -> dict[str, Any]:
    with server.client() as client:
        return client.get("InferenceGraph", name, "default")


def _wait_graph(server: RunningServer, name: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    graph: dict[str, Any] = {}
    while time.monotonic() < deadline:
        graph = _graph(server, name)
        if condition(graph, "Ready").get("status") == "True":
            return graph
        time.sleep(0.2)
    raise AssertionError(f"graph {name} not Ready: {graph.get('status')}\n{server.output()}")


def _apply(server: RunningServer, *objs: dict[str, Any]) -> None:
    cli(server, "apply", "-f", "-", stdin=yaml.safe_dump_all(objs))


def _custom_isvc(name: str, model_class: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "custom"},
                    "storageUri": str(MODELS_DIR),
                    "args": [f"--model-class=custom_models:{model_class}"],
                }
            }
        },
    }


def _ig(name: str, nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name},
        "spec": {"nodes": nodes},
    }


def test_upstream_sequence_sample(server: RunningServer) -> None:
    cli(server, "apply", "-f", str(EXAMPLES / "inferencegraph-sequence.yaml"))
    graph = _wait_graph(server, "model-chainer")
    url = graph["status"]["url"]
    assert url.startswith("http://127.0.0.1:")
    assert "model-chainer" in cli(server, "get", "ig")
    xgb = wait_ready(server, "xgboost-iris")
    direct = predict(xgb["status"]["url"], "xgboost-iris", ROWS)
    assert direct.status_code == 200, direct.text
    # the last step (xgboost-iris, data: $request) answers the graph's request
    answer = httpx.post(url, json={"instances": ROWS}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == direct.json()
    cli(server, "delete", "ig", "model-chainer")
    with pytest.raises(httpx.TransportError):
        httpx.post(url, json={"instances": ROWS}, timeout=5)


@pytest.fixture(scope="module")
def customs(server: RunningServer) -> None:
    _apply(server, _custom_isvc("addone", "AddOne"), _custom_isvc("rowsum", "RowSum"))
    wait_ready(server, "addone")
    wait_ready(server, "rowsum")


def test_sequence_with_response_and_ensemble(server: RunningServer, customs: None) -> None:
    sequence = {
        "routerType": "Sequence",
        "steps": [
            {"serviceName": "addone"},
            {"serviceName": "rowsum", "data": "$response", "mapPredictionsToInstances": True},
        ],
    }
    ensemble = {
        "routerType": "Ensemble",
        "steps": [
            {"serviceName": "addone", "name": "plus"},
            {"serviceName": "rowsum", "name": "sum"},
            {"nodeName": "chain", "name": "chained"},
        ],
    }
    _apply(server, _ig("combo", {"root": ensemble, "chain": sequence}))
    url = _wait_graph(server, "combo")["status"]["url"]
    answer = httpx.post(url, json={"instances": [[1, 2], [3, 4]]}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"plus", "sum", "chained"}
    assert body["plus"]["predictions"] == [[2, 3], [4, 5]]
    assert body["sum"]["predictions"] == [3, 7]
    assert body["chained"]["predictions"] == [5, 9]  # (1+1)+(2+1), (3+1)+(4+1)


def test_splitter_follows_weights(server: RunningServer, customs: None) -> None:
    splitter = {
        "routerType": "Splitter",
        "steps": [{"serviceName": "addone", "weight": 70}, {"serviceName": "rowsum", "weight": 30}],
    }
    _apply(server, _ig("split", {"root": splitter}))
    url = _wait_graph(server, "split")["status"]["url"]
    seen: collections.Counter[str] = collections.Counter()
    with httpx.Client(timeout=30) as client:
        for _ in range(80):
            answer = client.post(url, json={"instances": [[1, 2]]})
            assert answer.status_code == 200, answer.text
            seen["addone" if answer.json().get("model") == "addone" else "rowsum"] += 1
    # 80 draws at 70/30: both sides are hit, the heavier one more often (fails ~1e-6 of runs)
    assert seen["addone"] > seen["rowsum"] > 0, seen


def test_switch_on_the_request(server: RunningServer, customs: None) -> None:
    switch = {
        "routerType": "Switch",
        "steps": [
            {"serviceName": "rowsum", "condition": '[@this].#(route=="sum")'},
            {"serviceName": "addone", "condition": "[@this].#(instances.0.0>100)"},
        ],
    }
    _apply(server, _ig("switch", {"root": switch}))
    url = _wait_graph(server, "switch")["status"]["url"]
    to_sum = httpx.post(url, json={"route": "sum", "instances": [[1, 2]]}, timeout=30)
    assert to_sum.json()["predictions"] == [3]
    to_add = httpx.post(url, json={"instances": [[101, 2]]}, timeout=30)
    assert to_add.json()["predictions"] == [[102, 3]]
    none = httpx.post(url, json={"instances": [[1, 2]]}, timeout=30)
    assert none.status_code == 404
    assert "None of the routes matched" in none.json()["error"]


def test_graph_waits_for_its_services_and_refuses_bad_specs(server: RunningServer) -> None:
    _apply(
        server,
        _ig("dangling", {"root": {"routerType": "Sequence", "steps": [{"serviceName": "ghost"}]}}),
    )
    deadline = time.monotonic() + 30
    graph = _graph(server, "dangling")
    while not condition(graph, "Ready") and time.monotonic() < deadline:
        time.sleep(0.2)
        graph = _graph(server, "dangling")
    ready = condition(graph, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ServiceNotFound", graph["status"]
    answer = httpx.post(graph["status"]["url"], json={"instances": [[1]]}, timeout=10)
    assert answer.status_code == 503 and "ghost" in answer.json()["error"]
    bad = _ig(
        "bad", {"root": {"routerType": "Splitter", "steps": [{"serviceName": "a", "weight": 10}]}}
    )
    with pytest.raises(AssertionError, match="add up to 10"):  # cli() asserts exit code 0
        cli(server, "apply", "-f", "-", stdin=yaml.safe_dump(bad))

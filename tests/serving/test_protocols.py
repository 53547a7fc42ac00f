"""V1, V2 REST (JSON and binary), Seldon, metrics and V2 gRPC against a real sklearn server."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from tests.serving.conftest import Server

ROWS = [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]


@pytest.fixture(scope="module")
def iris(start_server: Any, iris_dir: Path) -> Server:
    server: Server = start_server(
        [
            "--model-name",
            "iris",
            "--model-dir",
            str(iris_dir),
            "--runtime",
            "sklearn",
            "--model-version",
            "1",
            "--protocol",
            "v2",
        ],
        grpc=True,
    )
    return server.wait_loaded()


@pytest.fixture(scope="module")
def expected(iris_dir: Path) -> list[int]:
    import joblib

    return [int(v) for v in joblib.load(iris_dir / "model.joblib").predict(np.array(ROWS))]


def test_v1_list_and_model_ready(iris: Server) -> None:
    assert iris.client.get("/v1/models").json() == {"models": ["iris"]}
    assert iris.client.get("/v1/models/iris").json() == {"name": "iris", "ready": True}
    missing = iris.client.get("/v1/models/other")
    assert missing.status_code == 404
    assert "other" in missing.json()["error"]


def test_v1_predict_matches_the_model(iris: Server, expected: list[int]) -> None:
    resp = iris.client.post("/v1/models/iris:predict", json={"instances": ROWS})
    assert resp.status_code == 200
    assert resp.json() == {"predictions": expected}


def test_v1_explain_without_explainer_is_501(iris: Server) -> None:
    resp = iris.client.post("/v1/models/iris:explain", json={"instances": ROWS})
    assert resp.status_code == 501
    assert "explainer" in resp.json()["error"]


def test_v2_health_and_server_metadata(iris: Server) -> None:
    assert iris.client.get("/v2/health/live").json() == {"live": True}
    assert iris.client.get("/v2/health/ready").json() == {"ready": True}
    meta = iris.client.get("/v2").json()
    assert meta["name"] == "flowyard"
    assert "binary_tensor_data" in meta["extensions"]
    for path in ("/v2/models/iris/ready", "/v2/models/iris/versions/1/ready"):
        assert iris.client.get(path).json() == {"name": "iris", "ready": True}
    assert iris.client.get("/v2/models/nope/ready").status_code == 404


def test_v2_model_metadata_is_real(iris: Server) -> None:
    for path in ("/v2/models/iris", "/v2/models/iris/versions/1"):
        meta = iris.client.get(path).json()
        assert meta["name"] == "iris"
        assert meta["versions"] == ["1"]
        assert meta["platform"] == "sklearn"
        assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
        assert meta["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]
    assert iris.client.get("/v2/models/iris/versions/9").status_code == 404


def _infer_body(rows: list[list[float]], **extra: Any) -> dict[str, Any]:
    flat = [v for row in rows for v in row]
    tensor = {"name": "input-0", "shape": [len(rows), 4], "datatype": "FP32", "data": flat}
    return {"inputs": [tensor], **extra}


def test_v2_infer_json(iris: Server, expected: list[int]) -> None:
    for path in ("/v2/models/iris/infer", "/v2/models/iris/versions/1/infer"):
        resp = iris.client.post(path, json=_infer_body(ROWS, id="req-7"))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["id"] == "req-7"
        assert body["model_name"] == "iris"
        assert body["model_version"] == "1"
        assert body["outputs"] == [
            {"name": "output-0", "shape": [3], "datatype": "INT64", "data": expected}
        ]
    nested = _infer_body(ROWS)
    nested["inputs"][0]["data"] = ROWS  # nested data is accepted too
    assert (
        iris.client.post("/v2/models/iris/infer", json=nested).json()["outputs"][0]["data"]
        == expected
    )


def test_v2_requested_outputs(iris: Server) -> None:
    ok = iris.client.post(
        "/v2/models/iris/infer", json=_infer_body(ROWS, outputs=[{"name": "output-0"}])
    )
    assert [o["name"] for o in ok.json()["outputs"]] == ["output-0"]
    bad = iris.client.post(
        "/v2/models/iris/infer", json=_infer_body(ROWS, outputs=[{"name": "probabilities"}])
    )
    assert bad.status_code == 400
    assert "probabilities" in bad.json()["error"]


def test_v2_binary_request_and_response(iris: Server, expected: list[int]) -> None:
    raw = np.array(ROWS, dtype=np.float32).tobytes()
    header = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [3, 4],
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": "output-0", "parameters": {"binary_data": True}}],
    }
    head = orjson.dumps(header)
    resp = iris.client.post(
        "/v2/models/iris/infer",
        content=head + raw,
        headers={
            "Inference-Header-Content-Length": str(len(head)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert resp.status_code == 200, resp.text
    json_len = int(resp.headers["Inference-Header-Content-Length"])
    meta = orjson.loads(resp.content[:json_len])
    out = meta["outputs"][0]
    assert out["datatype"] == "INT64" and out["shape"] == [3]
    assert "data" not in out
    tail = resp.content[json_len:]
    assert out["parameters"]["binary_data_size"] == len(tail) == 3 * 8
    assert np.frombuffer(tail, dtype="<i8").tolist() == expected


def test_v2_binary_errors(iris: Server) -> None:
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [3, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 40},
                }
            ]
        }
    )
    short = iris.client.post(
        "/v2/models/iris/infer",
        content=head + b"\0" * 40,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert short.status_code == 400
    assert "48 bytes" in short.json()["error"]
    beyond = iris.client.post(
        "/v2/models/iris/infer", content=head, headers={"Inference-Header-Content-Length": "99999"}
    )
    assert beyond.status_code == 400


def test_v2_binary_bytes_decoding() -> None:
    from flowyard.serving.binary import attach_binary_inputs, encode_array
    from flowyard.serving.infer_types import InferRequest

    words = [b"ab", b"", b"xyz"]
    raw = b"".join(struct.pack("<I", len(w)) + w for w in words)
    assert encode_array(np.array(words, dtype=object)) == raw
    req = InferRequest.from_rest(
        "m",
        {
            "inputs": [
                {
                    "name": "s",
                    "shape": [3],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        },
    )
    attach_binary_inputs(req, raw)
    assert req.inputs[0].as_numpy().tolist() == words


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
            400,
            "expects [-1, 4]",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 4],
                        "datatype": "BYTES",
                        "data": ["a", "b", "c", "d"],
                    }
                ]
            },
            400,
            "expects FP64",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP128", "data": [1, 2, 3, 4]}]},
            400,
            "FP128",
        ),
        (
            {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
            400,
            "needs 8 elements",
        ),
        (
            {
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ["a", "b", "c", "d"]}
                ]
            },
            400,
            "does not convert",
        ),
        (
            {"inputs": [{"name": "x", "shape": "1x4", "datatype": "FP32", "data": [1]}]},
            400,
            "shape",
        ),
        ({"inputs": []}, 400, "inputs"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_v2_bad_requests(iris: Server, body: Any, status: int, fragment: str) -> None:
    resp = iris.client.post("/v2/models/iris/infer", json=body)
    assert resp.status_code == status
    assert fragment in resp.json()["error"]


def test_unknown_model_is_404_on_every_protocol(iris: Server) -> None:
    assert iris.client.post("/v1/models/nope:predict", json={"instances": ROWS}).status_code == 404
    assert iris.client.post("/v2/models/nope/infer", json=_infer_body(ROWS)).status_code == 404
    assert iris.client.get("/v2/models/nope").status_code == 404
    assert iris.client.get("/no/such/route").status_code == 404


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/v1/models/iris:predict", b'{"instances": [[1, 2'),
        ("/v2/models/iris/infer", b"{not json"),
        ("/api/v1.0/predictions", b"\xff\xfe"),
        ("/v1/models/iris:predict", b""),
    ],
)
def test_malformed_json_is_400_and_server_survives(
    iris: Server, path: str, content: bytes, expected: list[int]
) -> None:
    resp = iris.client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert iris.alive()
    again = iris.client.post("/v1/models/iris:predict", json={"instances": ROWS})
    assert again.json()["predictions"] == expected


def test_v1_bad_instances(iris: Server) -> None:
    for body, fragment in [
        ({"instances": [[1, 2, 3]]}, "expects [-1, 4]"),
        ({"instances": [[1, 2, 3, 4], [1, 2]]}, "equal length"),
        ({"instances": "abc"}, "instances"),
        ({"rows": [[1, 2, 3, 4]]}, "instances"),
    ]:
        resp = iris.client.post("/v1/models/iris:predict", json=body)
        assert resp.status_code == 400, body
        assert fragment in resp.json()["error"]


def test_fifty_megabyte_request_is_413_and_server_survives(
    iris: Server, expected: list[int]
) -> None:
    big = b'{"instances": [' + b"[1.0, 2.0, 3.0, 4.0]," * (50 * 1024 * 1024 // 21) + b"[1,2,3,4]]}"
    assert len(big) > 50_000_000
    resp = iris.client.post(
        "/v1/models/iris:predict", content=big, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413
    assert "limit" in resp.json()["error"]
    assert iris.alive()
    with httpx.Client(base_url=iris.url) as fresh:
        resp = fresh.post("/v1/models/iris:predict", json={"instances": ROWS})
        assert resp.json()["predictions"] == expected


def test_seldon_ndarray_tensor_and_json(iris: Server, expected: list[int]) -> None:
    for path in ("/api/v0.1/predictions", "/api/v1.0/predictions"):
        nd = iris.client.post(path, json={"data": {"names": ["a", "b", "c", "d"], "ndarray": ROWS}})
        assert nd.status_code == 200, nd.text
        assert nd.json()["data"]["ndarray"] == expected
        flat = [v for row in ROWS for v in row]
        tensor = iris.client.post(
            path, json={"data": {"tensor": {"shape": [3, 4], "values": flat}}}
        )
        assert tensor.json()["data"]["tensor"] == {"shape": [3], "values": expected}
        js = iris.client.post(path, json={"jsonData": {"instances": ROWS}})
        assert js.json()["jsonData"] == {"predictions": expected}


def test_seldon_errors_use_status_object(iris: Server) -> None:
    cases = [
        {"strData": "hello"},
        {"data": {"tensor": {"shape": [2, 4], "values": [1, 2]}}},
        {"data": {"ndarray": [[1, 2]]}},
        {"nothing": 1},
    ]
    for body in cases:
        resp = iris.client.post("/api/v1.0/predictions", json=body)
        assert resp.status_code == 400, body
        status = resp.json()["status"]
        assert status["status"] == "FAILURE" and status["code"] == 400
        assert status["reason"] == "MICROSERVICE_BAD_DATA" and status["info"]
    missing = iris.client.post("/api/v1.0/predictions", json={"data": {"ndarray": ROWS}})
    assert missing.status_code == 200


def test_metrics_count_requests_by_code(iris: Server) -> None:
    iris.client.post("/v1/models/iris:predict", json={"instances": ROWS})
    iris.client.post("/v1/models/iris:predict", json={"instances": [[1]]})
    text = iris.client.get("/metrics").text
    ok = _sample(
        text,
        'flowyard_serving_requests_total{code="200",endpoint="predict",model="iris",protocol="v1"}',
    )
    bad = _sample(
        text,
        'flowyard_serving_requests_total{code="400",endpoint="predict",model="iris",protocol="v1"}',
    )
    assert ok >= 1 and bad >= 1
    assert (
        _sample(
            text,
            'flowyard_serving_request_duration_seconds_count{endpoint="predict",'
            'model="iris",protocol="v1"}',
        )
        >= ok + bad
    )


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


def test_grpc_v2(iris: Server, expected: list[int]) -> None:
    import grpc

    from flowyard.serving.grpc_server import pb, services

    with grpc.insecure_channel(f"127.0.0.1:{iris.grpc_port}") as channel:
        stub = services.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        assert stub.ModelReady(pb.ModelReadyRequest(name="iris"), timeout=10).ready
        assert stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10).name == "flowyard"
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="iris", version="1"), timeout=10)
        assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
            ("input-0", "FP64", [-1, 4])
        ]
        req = pb.ModelInferRequest(model_name="iris", id="g1")
        tensor = req.inputs.add(name="input-0", datatype="FP32", shape=[3, 4])
        tensor.contents.fp32_contents.extend([v for row in ROWS for v in row])
        resp = stub.ModelInfer(req, timeout=10)
        assert resp.id == "g1" and resp.model_version == "1"
        assert list(resp.outputs[0].contents.int64_contents) == expected

        raw_req = pb.ModelInferRequest(model_name="iris")
        raw_req.inputs.add(name="input-0", datatype="FP64", shape=[3, 4])
        raw_req.raw_input_contents.append(np.array(ROWS, dtype="<f8").tobytes())
        raw = stub.ModelInfer(raw_req, timeout=10)
        assert np.frombuffer(raw.raw_output_contents[0], dtype="<i8").tolist() == expected

        for bad, code in [
            (pb.ModelInferRequest(model_name="nope"), grpc.StatusCode.NOT_FOUND),
            (_grpc_request(pb, [1, 3], [1.0, 2.0, 3.0]), grpc.StatusCode.INVALID_ARGUMENT),
            (_grpc_request(pb, [2, 4], [1.0]), grpc.StatusCode.INVALID_ARGUMENT),
        ]:
            with pytest.raises(grpc.RpcError) as info:
                stub.ModelInfer(bad, timeout=10)
            assert info.value.code() == code


def _grpc_request(pb: Any, shape: list[int], values: list[float]) -> Any:
    req = pb.ModelInferRequest(model_name="iris")
    tensor = req.inputs.add(name="input-0", datatype="FP32", shape=shape)
    tensor.contents.fp32_contents.extend(values)
    return req

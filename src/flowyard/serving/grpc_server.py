"""V2 gRPC data plane (``inference.GRPCInferenceService``) on the same event loop as HTTP.

Stubs are generated from the packaged ``proto/grpc_predict_v2.proto`` at import time by
grpcio-tools (``grpc.protos_and_services``), so no generated code is committed.

Semantics match V2 REST: the same model handle, checks, batcher and concurrency limit. Inputs
come from typed ``contents`` or ``raw_input_contents``; the answer uses raw contents when the
request did, typed contents otherwise. Errors map to status codes: 404 -> NOT_FOUND,
400 -> INVALID_ARGUMENT, 503 -> UNAVAILABLE, 413 -> RESOURCE_EXHAUSTED, 501 -> UNIMPLEMENTED,
anything else INTERNAL.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import grpc

import flowyard
from flowyard.errors import BadRequestError, NotFoundError
from flowyard.serving import binary
from flowyard.serving.http import error_code, error_message
from flowyard.serving.infer_types import (
    DATATYPE_TO_NUMPY,
    InferInput,
    InferRequest,
    check_datatype,
)

if TYPE_CHECKING:
    from flowyard.serving.app import DataPlane

pb, services = grpc.protos_and_services("flowyard/serving/proto/grpc_predict_v2.proto")

_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_CODES = {
    404: grpc.StatusCode.NOT_FOUND,
    400: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
}


def _param(p: Any) -> Any:
    kind = p.WhichOneof("parameter_choice")
    return getattr(p, kind) if kind else None


def request_from_proto(msg: Any) -> InferRequest:
    raw = list(msg.raw_input_contents)
    if raw and len(raw) != len(msg.inputs):
        raise BadRequestError(
            f"raw_input_contents has {len(raw)} entries for {len(msg.inputs)} inputs"
        )
    inputs = []
    for i, tensor in enumerate(msg.inputs):
        datatype = check_datatype(tensor.name, tensor.datatype)
        shape = list(tensor.shape)
        item = InferInput(
            tensor.name, shape, datatype, None, {k: _param(v) for k, v in tensor.parameters.items()}
        )
        if raw:
            item.parameters["binary_data_size"] = len(raw[i])
        elif datatype == "FP16":
            raise BadRequestError(f"tensor '{tensor.name}': FP16 needs raw_input_contents")
        else:
            item.data = list(getattr(tensor.contents, _FIELDS[datatype]))
            item.as_numpy()  # check shape against element count now
        inputs.append(item)
    request = InferRequest(
        msg.model_name,
        inputs,
        msg.id or None,
        {k: _param(v) for k, v in msg.parameters.items()},
        [{"name": o.name} for o in msg.outputs],
    )
    if raw:
        binary.attach_binary_inputs(request, b"".join(raw))
    return request


def response_to_proto(result: Any, use_raw: bool) -> Any:
    msg = pb.ModelInferResponse(
        model_name=result.model_name, id=result.id or "", model_version=result.model_version or ""
    )
    for out in result.outputs:
        array = out.as_numpy()
        tensor = msg.outputs.add(name=out.name, datatype=out.datatype, shape=list(array.shape))
        if use_raw or out.datatype == "FP16":
            msg.raw_output_contents.append(binary.encode_array(array))
        elif out.datatype == "BYTES":
            tensor.contents.bytes_contents.extend(
                v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1)
            )
        else:
            flat = array.reshape(-1).astype(DATATYPE_TO_NUMPY[out.datatype])
            getattr(tensor.contents, _FIELDS[out.datatype]).extend(flat.tolist())
    return msg


class InferenceServicer:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.handle = plane.handle

    def _check_model(self, name: str, version: str) -> None:
        if name != self.handle.name:
            raise NotFoundError(f"Model with name {name} does not exist.")
        if version and version != (self.plane.version or ""):
            raise NotFoundError(f"Model {name} has no version {version}.")

    async def _fail(self, context: Any, exc: BaseException) -> None:
        code = _CODES.get(error_code(exc), grpc.StatusCode.INTERNAL)
        await context.abort(code, error_message(exc))

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.handle.ready)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        try:
            self._check_model(request.name, request.version)
        except Exception as exc:
            await self._fail(context, exc)
        return pb.ModelReadyResponse(ready=self.handle.ready)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return pb.ServerMetadataResponse(
            name="flowyard", version=flowyard.__version__, extensions=["binary_tensor_data"]
        )

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        try:
            self._check_model(request.name, request.version)
            self.handle.check_ready()
        except Exception as exc:
            await self._fail(context, exc)
        inputs, outputs = self.handle.metadata()
        tm = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=self.handle.name,
            platform=self.plane.platform,
            versions=[self.plane.version] if self.plane.version else [],
            inputs=[tm(**t) for t in inputs],
            outputs=[tm(**t) for t in outputs],
        )

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        start = time.perf_counter()
        code = 200
        try:
            self._check_model(request.model_name, request.model_version)
            infer_request = request_from_proto(request)
            limit = self.handle.limit
            if limit is None:
                result = await self.handle.infer_v2(infer_request, {})
            else:
                async with limit:
                    result = await self.handle.infer_v2(infer_request, {})
            result.model_version = self.plane.version
            return response_to_proto(result, use_raw=bool(request.raw_input_contents))
        except Exception as exc:
            code = error_code(exc)
            await self._fail(context, exc)
        finally:
            self.plane.metrics.observe("grpc", "infer", code, time.perf_counter() - start)

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server serves one fixed model")

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server serves one fixed model")


async def start_grpc(plane: DataPlane, host: str, port: int) -> Any:
    """Start the aio gRPC server on ``host:port`` in the running loop; returns the server."""
    limit = plane.max_request_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ]
    )
    services.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(plane), server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server

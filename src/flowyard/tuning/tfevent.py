"""The ``TensorFlowEvent`` metrics collector: scalars from TensorBoard event files.

An event file (``events.out.tfevents.*``) is a TFRecord stream: each record is ``uint64 length``
(little endian), ``uint32 masked CRC32C of the length bytes``, ``data``, ``uint32 masked CRC32C
of data``. Each ``data`` is a serialized ``tensorboard.Event`` protocol buffer; scalars are in
``event.summary.value[]`` either as ``simple_value`` (TF1 ``tf.summary.scalar``, tensorboardX,
PyTorch's ``SummaryWriter``) or as a scalar ``tensor`` (TF2 ``tf.summary.scalar``).

No TensorFlow or TensorBoard is needed: the few message types are declared here (field numbers
from TensorBoard's ``event.proto``, ``summary.proto``, ``tensor.proto``) and parsed with
``protobuf``, a core dependency. Fields not declared are skipped by the parser.

Reading contract (as Katib's ``tfevent_loader``):

* every file under the collector's directory, recursively, in path order;
* metric ``m`` matches a tag that starts with ``m``'s last ``/`` component; when ``m`` has a
  directory part (``test/accuracy``), the event file's directory must also end with it;
* a truncated last record (the writer is still writing) ends that file quietly; a record whose
  checksum does not match ends the file too (the rest cannot be trusted), as does a file that is
  not an event file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from flowyard.tuning.metrics import MetricLog

# -- CRC32C (Castagnoli), masked as TFRecord does --------------------------------------------

_CRC_TABLE: list[int] = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ 0x82F63B78 if _crc & 1 else _crc >> 1
    _CRC_TABLE.append(_crc)


def _crc32c_python(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc32c_function() -> Any:
    try:  # a C implementation, present when google-cloud-storage is (kfp pulls it in)
        import google_crc32c

        if google_crc32c.implementation == "c":
            return lambda data: int(google_crc32c.value(data))
    except ImportError:
        pass
    return _crc32c_python


crc32c = _crc32c_function()
"""CRC32C of ``bytes`` (an int)."""


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 bits and add ``0xa282ead8``."""
    crc = int(crc32c(data))
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# -- The Event message, declared here -----------------------------------------------------------

_F = descriptor_pb2.FieldDescriptorProto


def _message(name: str, fields: Sequence[tuple[str, int, int, str, bool]]) -> Any:
    msg = descriptor_pb2.DescriptorProto(name=name)
    for field_name, number, field_type, type_name, repeated in fields:
        label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
        added = msg.field.add(name=field_name, number=number, type=field_type, label=label)
        if type_name:
            added.type_name = type_name
    return msg


def _event_class() -> Any:
    pkg = "flowyard.tfevent"
    file = descriptor_pb2.FileDescriptorProto(name="flowyard/tfevent.proto", package=pkg)
    file.syntax = "proto3"
    file.message_type.extend(
        [
            _message("Dim", [("size", 1, _F.TYPE_INT64, "", False)]),
            _message("Shape", [("dim", 2, _F.TYPE_MESSAGE, f".{pkg}.Dim", True)]),
            _message(
                "Tensor",
                [
                    ("dtype", 1, _F.TYPE_INT32, "", False),
                    ("tensor_shape", 2, _F.TYPE_MESSAGE, f".{pkg}.Shape", False),
                    ("tensor_content", 4, _F.TYPE_BYTES, "", False),
                    ("float_val", 5, _F.TYPE_FLOAT, "", True),
                    ("double_val", 6, _F.TYPE_DOUBLE, "", True),
                    ("int_val", 7, _F.TYPE_INT32, "", True),
                    ("int64_val", 10, _F.TYPE_INT64, "", True),
                    ("half_val", 13, _F.TYPE_INT32, "", True),
                ],
            ),
            _message(
                "Value",
                [
                    ("tag", 1, _F.TYPE_STRING, "", False),
                    ("simple_value", 2, _F.TYPE_FLOAT, "", False),
                    ("tensor", 8, _F.TYPE_MESSAGE, f".{pkg}.Tensor", False),
                ],
            ),
            _message("Summary", [("value", 1, _F.TYPE_MESSAGE, f".{pkg}.Value", True)]),
            _message(
                "Event",
                [
                    ("wall_time", 1, _F.TYPE_DOUBLE, "", False),
                    ("step", 2, _F.TYPE_INT64, "", False),
                    ("summary", 5, _F.TYPE_MESSAGE, f".{pkg}.Summary", False),
                ],
            ),
        ]
    )
    # simple_value must report presence (a tensor-only value has simple_value unset, not 0).
    value = file.message_type[3]
    value.field[1].proto3_optional = True
    value.oneof_decl.add(name="_simple_value")
    value.field[1].oneof_index = 0
    pool = descriptor_pool.DescriptorPool()  # private: no clash with TensorBoard's own protos
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{pkg}.Event"))


Event = _event_class()

# TensorFlow DataType numbers -> struct format of one element.
_DTYPES = {1: "<f", 2: "<d", 3: "<i", 9: "<q", 19: "<e", 4: "<B", 5: "<h", 6: "<b"}


def float32(value: float) -> float:
    """The shortest decimal that is the same float32 as ``value`` (``0.6``, not
    ``0.6000000238418579``): event files store scalars as float32, and Katib prints them through
    NumPy, which gives the short form."""
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        short = float(f"{value:.{digits}g}")
        if struct.pack("<f", short) == packed:
            return short
    return value


def tensor_scalar(tensor: Any) -> float | None:
    """The value of a one-element numeric tensor (None for anything else)."""
    if sum(1 for _ in tensor.tensor_shape.dim) and _elements(tensor) != 1:
        return None
    fmt = _DTYPES.get(tensor.dtype)
    if tensor.tensor_content:
        if fmt is None or len(tensor.tensor_content) != struct.calcsize(fmt):
            return None
        number = float(struct.unpack(fmt, tensor.tensor_content)[0])
        return float32(number) if fmt in ("<f", "<e") else number
    if len(tensor.float_val):
        return float32(tensor.float_val[0])
    for values in (tensor.double_val, tensor.int_val, tensor.int64_val):
        if len(values):
            return float(values[0])
    if len(tensor.half_val):  # IEEE half bits stored in an int32
        return float(struct.unpack("<e", struct.pack("<H", tensor.half_val[0] & 0xFFFF))[0])
    return None


def _elements(tensor: Any) -> int:
    count = 1
    for dim in tensor.tensor_shape.dim:
        count *= dim.size
    return count


# -- Reading ----------------------------------------------------------------------------------


def read_records(path: Path) -> Iterator[bytes]:
    """The verified records of one TFRecord file; stops at a truncated or corrupt record."""
    with path.open("rb") as handle:
        while True:
            header = handle.read(12)
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            if struct.unpack("<I", header[8:])[0] != masked_crc32c(header[:8]):
                return
            data = handle.read(length)
            footer = handle.read(4)
            if len(data) < length or len(footer) < 4:
                return
            if struct.unpack("<I", footer)[0] != masked_crc32c(data):
                return
            yield data


def read_scalars(path: Path) -> Iterator[tuple[str, float, float, int]]:
    """``(tag, value, wall_time, step)`` for every scalar in one event file."""
    for data in read_records(path):
        event = Event()
        try:
            event.ParseFromString(data)
        except Exception:  # protobuf's DecodeError: not an event record
            return
        for value in event.summary.value:
            if value.HasField("simple_value"):
                number: float | None = float32(value.simple_value)
            elif value.HasField("tensor"):
                number = tensor_scalar(value.tensor)
            else:
                number = None
            if number is not None:
                yield value.tag, number, event.wall_time, event.step


def _matches(metric: str, tag: str, file_dir: str) -> bool:
    """Katib's rule: the tag starts with the metric's last component, and a metric with a
    directory part (``test/accuracy``) reads only event files whose directory ends with it."""
    head, _, last = metric.rpartition("/")
    if not tag.startswith(last):
        return False
    return not head or file_dir.rstrip(os.sep).endswith(head)


def _timestamp(wall_time: float) -> str:
    return datetime.fromtimestamp(wall_time, UTC).isoformat().replace("+00:00", "Z")


def parse_event_dir(directory: Path, metric_names: Sequence[str]) -> list[MetricLog]:
    """Every value of ``metric_names`` in the event files under ``directory`` (a single event
    file is accepted too), file by file in path order, records in file order."""
    if directory.is_file():
        files = [directory]
    elif directory.is_dir():
        files = sorted(p for p in directory.rglob("*") if p.is_file())
    else:
        return []
    logs: list[MetricLog] = []
    for path in files:
        try:
            scalars = list(read_scalars(path))
        except OSError:
            continue
        for tag, value, wall_time, _step in scalars:
            for metric in metric_names:
                if _matches(metric, tag, str(path.parent)):
                    logs.append(MetricLog(metric, value, _timestamp(wall_time)))
    return logs

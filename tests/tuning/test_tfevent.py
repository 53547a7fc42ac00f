"""The TensorFlowEvent collector against event files written by a real writer (tensorboardX)."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # tensorboardX imports google-cloud-storage when present (kfp installs it), which warns
    # that grpcio-status is missing; nothing here uses either.
    warnings.simplefilter("ignore", ImportWarning)
    from tensorboardX import SummaryWriter
    from tensorboardX.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from flowyard.tuning import tfevent
from flowyard.tuning.collect import collect
from flowyard.tuning.metrics import Observation
from flowyard.tuning.runobject import local_path


def _write_scalars(logdir: Path, tag: str, values: list[float]) -> None:
    writer = SummaryWriter(str(logdir))
    for step, value in enumerate(values):
        writer.add_scalar(tag, value, step)
    writer.close()


def _write_tensor(logdir: Path, tag: str, tensor: tensor_pb2.TensorProto, step: int = 0) -> None:
    """A TF2-style scalar (``summary.value[].tensor``) through tensorboardX's own protos."""
    writer = SummaryWriter(str(logdir))
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, tensor=tensor)])
    writer.file_writer.add_summary(summary, step)
    writer.close()


def test_crc32c_known_answer() -> None:
    # The CRC-32C check value from the Castagnoli polynomial's definition (RFC 3720 B.4).
    assert tfevent.crc32c(b"123456789") == 0xE3069283
    assert tfevent._crc32c_python(b"123456789") == 0xE3069283
    assert tfevent._crc32c_python(bytes(32)) == 0x8A9136AA


def test_simple_values_in_order_with_float32_shortened(tmp_path: Path) -> None:
    _write_scalars(tmp_path / "run", "accuracy", [0.5, 0.6, 0.7])
    logs = tfevent.parse_event_dir(tmp_path, ["accuracy"])
    assert [log.value for log in logs] == [0.5, 0.6, 0.7]
    assert all(log.timestamp.endswith("Z") for log in logs)


def test_katib_name_matching_by_directory(tmp_path: Path) -> None:
    _write_scalars(tmp_path / "train", "loss", [3.0, 2.0])
    _write_scalars(tmp_path / "test", "loss", [1.5, 1.25])
    assert [log.value for log in tfevent.parse_event_dir(tmp_path, ["test/loss"])] == [1.5, 1.25]
    assert [log.value for log in tfevent.parse_event_dir(tmp_path, ["train/loss"])] == [3.0, 2.0]
    both = tfevent.parse_event_dir(tmp_path, ["loss"])
    assert sorted(log.value for log in both) == [1.25, 1.5, 2.0, 3.0]
    # The tag need only start with the metric's last component (Katib's rule).
    _write_scalars(tmp_path / "eval", "loss_1", [0.75])
    assert [log.value for log in tfevent.parse_event_dir(tmp_path, ["eval/loss"])] == [0.75]
    assert tfevent.parse_event_dir(tmp_path, ["accuracy"]) == []


@pytest.mark.parametrize(
    ("tensor", "expected"),
    [
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0.9]), 0.9),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, double_val=[0.123456789]), 0.123456789),
        (
            tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, tensor_content=struct.pack("<f", 0.25)
            ),
            0.25,
        ),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, int64_val=[7]), 7.0),
        (
            tensor_pb2.TensorProto(
                dtype=types_pb2.DT_HALF, half_val=[struct.unpack("<H", struct.pack("<e", 1.5))[0]]
            ),
            1.5,
        ),
    ],
)
def test_tensor_scalars(tmp_path: Path, tensor: tensor_pb2.TensorProto, expected: float) -> None:
    _write_tensor(tmp_path, "accuracy", tensor)
    assert [log.value for log in tfevent.parse_event_dir(tmp_path, ["accuracy"])] == [expected]


def test_non_scalar_tensors_are_skipped(tmp_path: Path) -> None:
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2)])
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[1.0, 2.0], tensor_shape=shape
    )
    _write_tensor(tmp_path, "accuracy", tensor)
    assert tfevent.parse_event_dir(tmp_path, ["accuracy"]) == []


def _event_file(directory: Path) -> Path:
    (path,) = directory.glob("events.out.tfevents.*")
    return path


def test_truncated_tail_and_corrupt_record(tmp_path: Path) -> None:
    _write_scalars(tmp_path, "loss", [1.0, 2.0, 3.0])
    path = _event_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the writer is in the middle of the last record
    assert [log.value for log in tfevent.parse_event_dir(tmp_path, ["loss"])] == [1.0, 2.0]
    corrupt = bytearray(data)
    corrupt[-10] ^= 0xFF  # flip a byte of the last record's payload: its CRC no longer matches
    path.write_bytes(bytes(corrupt))
    assert [log.value for log in tfevent.parse_event_dir(tmp_path, ["loss"])] == [1.0, 2.0]


def test_not_an_event_file_and_missing_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("loss=0.1\n" * 10)
    assert tfevent.parse_event_dir(tmp_path, ["loss"]) == []
    assert tfevent.parse_event_dir(tmp_path / "absent", ["loss"]) == []


def test_own_records_verified_against_the_framing(tmp_path: Path) -> None:
    """A record framed by hand (length, masked CRC, data, masked CRC) reads back; the mask is
    TFRecord's (rotate right 15, add 0xa282ead8)."""
    event = tfevent.Event(wall_time=1.5, step=3)
    value = event.summary.value.add(tag="score")
    value.simple_value = -2.5
    data = event.SerializeToString()
    length = struct.pack("<Q", len(data))
    crc = tfevent.crc32c(data)
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert tfevent.masked_crc32c(data) == masked
    record = length + struct.pack("<I", tfevent.masked_crc32c(length)) + data
    (tmp_path / "events.out.tfevents.1").write_bytes(record + struct.pack("<I", masked))
    logs = tfevent.parse_event_dir(tmp_path, ["score"])
    assert [(log.value, log.timestamp) for log in logs] == [(-2.5, "1970-01-01T00:00:01.500000Z")]


def test_collect_reads_the_trials_directory() -> None:
    trial = {
        "metadata": {"name": "t1", "namespace": "default"},
        "spec": {
            "metricsCollector": {
                "collector": {"kind": "TensorFlowEvent"},
                "source": {"fileSystemPath": {"kind": "Directory", "path": "/logs/test"}},
            }
        },
    }
    _write_scalars(local_path(trial, "/logs/test"), "accuracy", [0.1, 0.9, 0.8])
    observation = Observation.of(collect(trial, ["accuracy"]))
    status = observation.to_status(["accuracy"])
    assert status["metrics"] == [{"name": "accuracy", "min": "0.1", "max": "0.9", "latest": "0.8"}]

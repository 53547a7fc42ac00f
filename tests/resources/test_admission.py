"""Admission: kinds, metadata rules, schema validation and hooks, with field paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flowyard.errors import FieldCause, InvalidError, NotFoundError
from flowyard.jobs import register as register_jobs
from flowyard.resources import REGISTRY, admit
from flowyard.resources.registry import KindInfo, KindRegistry

JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "pi"},
    "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "python", "command": ["true"]}]}}},
}  # fmt: skip


def job(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(JOB)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = obj
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[leaf] = value
    return obj


def fields(exc: pytest.ExceptionInfo[InvalidError]) -> list[str]:
    return [c.field for c in exc.value.causes]


def setup_module() -> None:
    register_jobs()


def test_a_valid_job_is_defaulted() -> None:
    obj = job()
    admit(obj)
    assert obj["spec"]["backoffLimit"] == 6 and obj["spec"]["completions"] == 1


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match=r"known kinds: .*batch/v1/Job"):
        admit({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    with pytest.raises(NotFoundError, match="Job is served as apiVersion batch/v1"):
        admit(dict(job(), apiVersion="batch/v2"))


@pytest.mark.parametrize(
    ("obj", "field", "text"),
    [
        (job(metadata={"name": "Bad_Name"}), "metadata.name", "RFC 1123"),
        (job(metadata={"name": "ok", "lables": {}}), "metadata", 'did you mean "labels"'),
        (job(metadata={"name": "ok", "labels": {"k": "v" * 64}}), "metadata.labels[k]", "63"),
        (job(spec__backoffLimit="six"), "spec.backoffLimit", "must be of type integer"),
        (job(spec__backoffLimit=-1), "spec.backoffLimit", "minimum"),
        (job(spec__template__spec__restartPolicy="Sometimes"),
         "spec.template.spec.restartPolicy", "supported values"),
        (job(spec__template__spec__containers__0__comand=["x"]),
         "spec.template.spec.containers[0]", 'did you mean "command"'),
        (job(spec__template__spec__containers=[{"name": "c", "image": "x"}]),
         "spec.template.spec.containers[0].command", "does not pull images"),
        (job(spec__template__spec__restartPolicy="Always"),
         "spec.template.spec.restartPolicy", "Never or OnFailure"),
    ],
)  # fmt: skip
def test_problems_name_the_field(obj: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(InvalidError) as exc:
        admit(obj)
    assert field in fields(exc)
    assert text in exc.value.message


def test_every_problem_of_a_step_is_reported_together() -> None:
    bad = job(spec__backoffLimit="x", spec__parallelism="y")
    with pytest.raises(InvalidError) as exc:
        admit(bad)
    assert {"spec.backoffLimit", "spec.parallelism"} <= set(fields(exc))


def test_immutable_template_on_update() -> None:
    old = job()
    admit(old)
    new = job(spec__template__spec__containers=[{"name": "c", "image": "x", "command": ["false"]}])
    with pytest.raises(InvalidError, match="immutable"):
        admit(new, old)


def test_hooks_of_one_registry_do_not_leak_into_another() -> None:
    registry = KindRegistry()
    info = KindInfo(group="example.com", version="v1", kind="Widget", plural="widgets")
    own = registry.ensure(info)
    assert registry.ensure(info) is own

    def deny(new: dict[str, Any], old: dict[str, Any] | None) -> list[FieldCause]:
        return [FieldCause("spec.size", "Invalid value: too big")]

    registry.add_validator("example.com/v1", "Widget", deny)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(InvalidError, match="too big"):
        admit(dict(widget), registry=registry)
    with pytest.raises(NotFoundError):
        REGISTRY.get("example.com/v1", "Widget")

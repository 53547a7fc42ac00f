"""Kubernetes quantities and container resources."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flowyard.errors import InvalidError
from flowyard.executors.base import Resources
from flowyard.resources.quantity import (
    cpu_cores,
    memory_bytes,
    parse_quantity,
    resources_from_kubernetes,
)


@pytest.mark.parametrize(
    ("text", "cores"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("0.5", 0.5),
        ("1e3", 1000.0),
        ("100m", 0.1),
        (1, 1.0),
        (0.25, 0.25),
        ("1.5", 1.5),
        ("250000u", 0.25),
        ("+2", 2.0),
        (".5", 0.5),
    ],
)
def test_cpu(text: str | float, cores: float) -> None:
    assert cpu_cores(text) == pytest.approx(cores)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1Gi", 2**30),
        ("512Mi", 512 * 2**20),
        ("1G", 10**9),
        ("1e3", 1000),
        ("128974848", 128974848),
        ("129e6", 129_000_000),
        ("123Mi", 123 * 2**20),
        ("1.5Gi", 3 * 2**29),
        ("1k", 1000),
        ("1Ki", 1024),
        ("2Ti", 2 * 2**40),
        ("1E", 10**18),
        ("1500m", 2),  # rounded up, as Kubernetes' Value() does
        (2048, 2048),
    ],
)
def test_memory(text: str | int, size: int) -> None:
    assert memory_bytes(text) == size


def test_parse_is_exact() -> None:
    assert parse_quantity("0.1") == Decimal("0.1")
    assert parse_quantity("3n") == Decimal("3E-9")
    assert parse_quantity("-1") == Decimal(-1)


@pytest.mark.parametrize(
    "bad", ["", "abc", "1K", "1 Gi", "1Gb", "1.2.3", "Gi", "1e", "--1", "1e999", "1mi", True, None]
)
def test_bad_quantities_name_the_value(bad: object) -> None:
    with pytest.raises(InvalidError) as err:
        parse_quantity(bad, field="spec.cpu")  # type: ignore[arg-type]
    assert repr(bad) in err.value.message
    assert err.value.causes[0].field == "spec.cpu"


def test_negative_resources_are_refused() -> None:
    with pytest.raises(InvalidError, match="negative"):
        cpu_cores("-1")
    with pytest.raises(InvalidError, match="negative"):
        memory_bytes("-1Gi")


def test_resources_from_requests_then_limits() -> None:
    got = resources_from_kubernetes(
        {"cpu": "500m", "ephemeral-storage": "1Gi"},
        {"cpu": "4", "memory": "1Gi", "nvidia.com/gpu": "2"},
    )
    assert got == Resources(cpu=0.5, memory=2**30, gpu=2)
    assert resources_from_kubernetes(None, None) == Resources()
    assert resources_from_kubernetes({"nvidia.com/gpu": 1}, None).gpu == 1


def test_resource_errors_name_the_field() -> None:
    with pytest.raises(InvalidError) as err:
        resources_from_kubernetes(
            None, {"memory": "lots"}, field="spec.template.spec.containers[0].resources"
        )
    cause = err.value.causes[0]
    assert cause.field == "spec.template.spec.containers[0].resources.limits.memory"
    assert "'lots'" in cause.message
    with pytest.raises(InvalidError, match="whole number"):
        resources_from_kubernetes({"nvidia.com/gpu": "0.5"}, None)

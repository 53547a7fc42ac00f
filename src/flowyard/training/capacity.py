"""Can a gang of replicas ever fit on this machine? Checked at admission so that a job that
could never start fails at ``apply`` with a clear error instead of waiting forever.

The totals come from the executor's capacity rules (:func:`flowyard.executors.capacity.
resolve_capacity`: cores, RAM, GPUs, the process cap). The control plane may install its own
executor's view with :func:`set_capacity_source`.
"""

from __future__ import annotations

from collections.abc import Callable

from flowyard.errors import FieldCause
from flowyard.executors.base import Resources
from flowyard.executors.capacity import Capacity, resolve_capacity

_source: Callable[[], Capacity] = resolve_capacity


def set_capacity_source(source: Callable[[], Capacity] | None) -> None:
    """Use ``source`` for admission checks (None restores the machine's own totals)."""
    global _source
    _source = source or resolve_capacity


def machine_capacity() -> Capacity:
    return _source()


def gang_causes(field: str, members: list[Resources], what: str) -> list[FieldCause]:
    """Problems if ``members`` (started together, one process each) can never fit."""
    cap = machine_capacity()
    total = Resources()
    for member in members:
        total = total + member
    problems = []
    if len(members) > cap.max_processes:
        problems.append(
            f"{len(members)} processes, but at most {cap.max_processes} may run at "
            "once (FLOWYARD_MAX_PROCESSES)"
        )
    if total.cpu > cap.cpu + 1e-9:
        problems.append(f"{total.cpu:g} CPU cores in total, but this machine has {cap.cpu:g}")
    if total.memory > cap.memory:
        problems.append(
            f"{total.memory} bytes of memory in total, but this machine has {cap.memory}"
        )
    if total.gpu > len(cap.gpu_ids):
        problems.append(
            f"{total.gpu} GPUs (nvidia.com/gpu) in total, but this machine has {len(cap.gpu_ids)}"
        )
    if not problems:
        return []
    return [
        FieldCause(
            field,
            f"Invalid value: {what} can never run here: it needs "
            + "; ".join(problems)
            + ". All replicas start together (a gang), so "
            "reduce the replicas or their resource requests",
            "FieldValueInvalid",
        )
    ]

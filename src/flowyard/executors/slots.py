"""Slot accounting and the wait queue of the local executor.

Four dimensions are counted: CPU (in milli-cores, so that sums of fractions never drift), memory
bytes, GPUs (specific device ids) and running processes (the fork-bomb cap).

Queue rule (fair, cannot starve a gang): entries (a single process or a whole gang) wait in FIFO
order. Scheduling walks the queue from the oldest entry; an entry that fits in what is still
available starts; an entry that does not fit *earmarks* what it needs from what is still
available (per dimension, up to what is there) before the walk goes on. So a later entry may
overtake a blocked one only with slots the blocked one does not need (for example a CPU-only
process may start while a GPU gang waits for a GPU, but not with the CPUs the gang is waiting
for). A waiting entry's earmark only grows as running processes end, so it starts as soon as
the work that was running when it arrived has released enough: nothing can starve it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from flowyard.errors import FieldCause, InsufficientResourcesError
from flowyard.executors.base import Resources


@dataclass(frozen=True)
class Need:
    """An amount in the four scheduled dimensions."""

    millicpu: int = 0
    memory: int = 0
    gpu: int = 0
    processes: int = 0

    @classmethod
    def of(cls, resources: Iterable[Resources]) -> Need:
        total = cls()
        for res in resources:
            total = total + cls(round(res.cpu * 1000), res.memory, res.gpu, 1)
        return total

    def __add__(self, other: Need) -> Need:
        return Need(
            self.millicpu + other.millicpu,
            self.memory + other.memory,
            self.gpu + other.gpu,
            self.processes + other.processes,
        )

    def __sub__(self, other: Need) -> Need:
        return Need(
            self.millicpu - other.millicpu,
            self.memory - other.memory,
            self.gpu - other.gpu,
            self.processes - other.processes,
        )

    def fits_in(self, free: Need) -> bool:
        return (
            self.millicpu <= free.millicpu
            and self.memory <= free.memory
            and self.gpu <= free.gpu
            and self.processes <= free.processes
        )

    def clipped(self) -> Need:
        """Negative parts set to zero."""
        return Need(
            max(self.millicpu, 0), max(self.memory, 0), max(self.gpu, 0), max(self.processes, 0)
        )

    def describe(self) -> str:
        return (
            f"cpu={self.millicpu / 1000:g}, memory={self.memory} bytes, gpu={self.gpu}, "
            f"processes={self.processes}"
        )


@dataclass
class Entry:
    """One queued unit: a single process or a gang (names in launch order)."""

    names: list[str]
    resources: list[Resources]
    need: Need = field(init=False)

    def __post_init__(self) -> None:
        self.need = Need.of(self.resources)


class Slots:
    """Free capacity and GPU ids. Not thread safe: the executor holds its lock around calls."""

    def __init__(self, cpu: float, memory: int, gpu_ids: Sequence[str], max_processes: int):
        self.total = Need(round(cpu * 1000), memory, len(gpu_ids), max_processes)
        self.free = self.total
        self._gpu_order = list(gpu_ids)
        self._free_gpus = list(gpu_ids)

    def check_possible(self, what: str, resources: list[Resources]) -> None:
        """Raise InsufficientResourcesError if ``resources`` (together) can never fit."""
        need = Need.of(resources)
        if need.fits_in(self.total):
            return
        message = (
            f"{what} asks for {need.describe()} but this executor has {self.total.describe()} "
            "in total; lower the requests, or give the executor more capacity "
            "(FLOWYARD_GPUS, FLOWYARD_MAX_PROCESSES, or run on a larger machine or a Ray cluster)"
        )
        raise InsufficientResourcesError(
            message, causes=[FieldCause(field="resources", message=message)]
        )

    def take(self, resources: list[Resources]) -> list[list[str]]:
        """Reserve slots for every member; return the GPU ids given to each."""
        self.free = self.free - Need.of(resources)
        assigned: list[list[str]] = []
        for res in resources:
            ids, self._free_gpus = self._free_gpus[: res.gpu], self._free_gpus[res.gpu :]
            assigned.append(ids)
        return assigned

    def adopt(self, resources: Resources, gpu_ids: Sequence[str]) -> None:
        """Account for a recovered process holding ``gpu_ids`` (may over-commit if the
        capacity shrank since it started; the overflow drains as processes end)."""
        self.free = self.free - Need.of([resources])
        self._free_gpus = [g for g in self._free_gpus if g not in set(gpu_ids)]

    def give(self, resources: Resources, gpu_ids: Sequence[str]) -> None:
        """Release what a finished process held."""
        self.free = self.free + Need.of([resources])
        known = set(self._gpu_order)
        returned = set(self._free_gpus) | {g for g in gpu_ids if g in known}
        self._free_gpus = [g for g in self._gpu_order if g in returned]


class WaitQueue:
    """FIFO of waiting entries with the earmarking rule described in the module docstring."""

    def __init__(self) -> None:
        self._entries: list[Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def push(self, entry: Entry) -> None:
        self._entries.append(entry)

    def remove_containing(self, name: str) -> Entry | None:
        """Drop and return the entry that holds ``name`` (a gang leaves as a whole)."""
        for index, entry in enumerate(self._entries):
            if name in entry.names:
                return self._entries.pop(index)
        return None

    def pop_ready(self, free: Need) -> list[Entry]:
        """Remove and return, in order, the entries that may start now."""
        available = free
        ready: list[Entry] = []
        for entry in self._entries:
            if entry.need.fits_in(available):
                ready.append(entry)
                available = available - entry.need
            else:
                available = (available - entry.need).clipped()
            if available == Need():
                break
        for entry in ready:
            self._entries.remove(entry)
        return ready

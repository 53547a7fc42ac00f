"""What the local executor may schedule into: CPU cores, RAM, GPUs and a process cap.

Defaults come from the machine (``os.cpu_count()``, total RAM, ``nvidia-smi -L``); environment
variables override them for a whole installation, constructor arguments for one executor:

* ``FLOWYARD_GPUS``: the number of GPUs to hand out (device indices ``0..N-1``); ``0`` turns GPU
  scheduling off even where ``nvidia-smi`` finds GPUs.
* ``FLOWYARD_MAX_PROCESSES``: the most processes running at once (default ``max(8, 4 * cpus)``),
  so that specs asking for nothing cannot fork-bomb the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from flowyard.errors import InvalidError

_NVIDIA_SMI_TIMEOUT = 10.0


@dataclass(frozen=True)
class Capacity:
    """Totals for the scheduler: cores, bytes, GPU device ids (as ``CUDA_VISIBLE_DEVICES`` wants
    them) and the process cap."""

    cpu: float
    memory: int
    gpu_ids: tuple[str, ...]
    max_processes: int


def detect_gpu_count() -> int:
    """GPUs listed by ``nvidia-smi -L`` (0 without the tool or when it fails)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        out = subprocess.run(
            [tool, "-L"], capture_output=True, text=True, timeout=_NVIDIA_SMI_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    if out.returncode != 0:
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def _env_int(name: str, minimum: int) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise InvalidError(f"{name}={raw!r}: expected a whole number >= {minimum}")
    return value


def resolve_capacity(
    *,
    cpu: float | None = None,
    memory: int | None = None,
    gpus: int | Sequence[str] | None = None,
    max_processes: int | None = None,
) -> Capacity:
    """The executor's capacity: explicit arguments, else the environment, else the machine.

    ``gpus`` is a count (devices ``0..N-1``) or an explicit list of device ids.
    """
    cores = float(cpu) if cpu is not None else float(os.cpu_count() or 1)
    ram = int(memory) if memory is not None else int(psutil.virtual_memory().total)
    if cores < 0 or ram < 0:
        raise InvalidError(f"executor capacity must not be negative (cpu={cores}, memory={ram})")
    if gpus is None:
        from_env = _env_int("FLOWYARD_GPUS", 0)
        gpus = from_env if from_env is not None else detect_gpu_count()
    gpu_ids = tuple(str(i) for i in range(gpus)) if isinstance(gpus, int) else tuple(gpus)
    if max_processes is None:
        from_env = _env_int("FLOWYARD_MAX_PROCESSES", 1)
        max_processes = from_env if from_env is not None else max(8, 4 * (os.cpu_count() or 1))
    if max_processes < 1:
        raise InvalidError(f"max_processes must be at least 1, not {max_processes}")
    return Capacity(cpu=cores, memory=ram, gpu_ids=gpu_ids, max_processes=max_processes)

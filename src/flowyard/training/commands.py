"""How a container's ``command``/``args`` become a host argv.

flowyard runs every replica as a process on this machine, not inside the container image, so:

* the argv is ``command + args``; a container without ``command`` has nothing to run (the image's
  entrypoint is unknown here) unless its image is one of the few upstream example images that
  flowyard knows how to stand in for (:data:`IMAGE_ENTRYPOINTS`);
* ``python``, ``python3`` and ``torchrun`` as the program resolve to the interpreter flowyard runs
  on (so the job sees the packages installed next to flowyard), ``torchrun`` as
  ``<python> -m torch.distributed.run``. Any other program is looked up on ``PATH``.
* paths inside a known example image (``/opt/pytorch-mnist/mnist.py``,
  ``/var/tf_mnist/mnist_with_summaries.py``) map to flowyard's local stand-in scripts.

The mapping is explicit: only the exact image references in :data:`IMAGE_ENTRYPOINTS` (listed in
docs/training.md) are stood in for; any other image without ``command`` is refused at apply time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from typing import Any

PYTHON_NAMES = frozenset({"python", "python3", sys.executable})


@dataclass(frozen=True)
class ImageEntrypoint:
    """A stand-in for a known image: its entrypoint and the in-image files it provides."""

    entrypoint: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)  # in-image path -> example module name


def _example(module: str) -> str:
    return str(importlib_resources.files("flowyard.training.examples").joinpath(f"{module}.py"))


# Upstream example images (training-operator v1.9 examples) and what they run. The stand-ins
# train the same kind of model on synthetic MNIST-shaped data (this machine has no network).
IMAGE_ENTRYPOINTS: dict[str, ImageEntrypoint] = {
    "ghcr.io/kubeflow/training-v1/pytorch-dist-mnist:latest": ImageEntrypoint(
        ("python", "@example:mnist_ddp")
    ),
    "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727": ImageEntrypoint(
        ("python", "@example:mnist_ddp"), {"/opt/pytorch-mnist/mnist.py": "mnist_ddp"}
    ),
    # TFJob examples: parameter-server training driven by TF_CONFIG over loopback sockets, in
    # plain Python (no TensorFlow); without ps tasks each replica trains alone.
    "ghcr.io/kubeflow/training-v1/tf-dist-mnist-test:latest": ImageEntrypoint(
        ("python", "@example:tf_dist_mnist")
    ),
    "ghcr.io/kubeflow/training-v1/tf-mnist-with-summaries:latest": ImageEntrypoint(
        ("python", "@example:tf_dist_mnist"),
        {"/var/tf_mnist/mnist_with_summaries.py": "tf_dist_mnist"},
    ),
}


def image_entrypoint(image: object) -> ImageEntrypoint | None:
    return IMAGE_ENTRYPOINTS.get(str(image)) if isinstance(image, str) else None


def has_command(container: dict[str, Any]) -> bool:
    """True if the container can be run as a host process."""
    return bool(container.get("command")) or image_entrypoint(container.get("image")) is not None


def host_argv(container: dict[str, Any], python: str = sys.executable) -> list[str]:
    """The argv to run for ``container`` on this machine (see the module docstring).

    ValueError if there is no command (validation reports that earlier with the field path).
    """
    known = image_entrypoint(container.get("image"))
    command = [str(c) for c in container.get("command") or []]
    if not command:
        if known is None:
            raise ValueError("container has no command")
        command = list(known.entrypoint)
    argv = command + [str(a) for a in container.get("args") or []]
    files = known.files if known else {}
    argv = [_example(files[a]) if a in files else a for a in argv]
    argv = [_example(a.removeprefix("@example:")) if a.startswith("@example:") else a for a in argv]
    return resolve_program(argv, python)


def resolve_program(argv: list[str], python: str = sys.executable) -> list[str]:
    """Map ``python``/``python3``/``torchrun`` to this interpreter; leave anything else."""
    if not argv:
        return argv
    program = argv[0]
    if program in PYTHON_NAMES:
        return [python, *argv[1:]]
    if program == "torchrun":
        return [python, "-m", "torch.distributed.run", *argv[1:]]
    return argv

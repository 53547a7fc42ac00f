"""A Python API in the style of the Kubeflow SDK's ``TrainerClient``.

``TrainerClient().train(func=..., func_args=..., num_nodes=..., resources_per_node=...,
packages_to_install=...)`` submits a TrainJob that runs ``func`` on every node (with ``torchrun``
on the ``torch-distributed`` runtime) and returns its name; ``list_runtimes``, ``get_job``,
``list_jobs``, ``get_job_logs(follow=True)``, ``wait_for_job_status`` and ``delete_job`` work on
TrainJobs through the flowyard server (``flowyard.Client``).

No fresh virtual environment per job: nodes run on the interpreter flowyard runs on.
``packages_to_install`` names that are already installed there are skipped; missing ones are
installed once with ``pip install --target`` into a directory shared by every job asking for the
same set (the server's ``FLOWYARD_HOME/training/packages/<hash>``, given to nodes as
``FLOWYARD_PACKAGES_DIR``) and put first on ``sys.path`` (a file lock keeps concurrent nodes
from installing twice).

The building of the TrainJob (:func:`build_trainjob`) is separate from submitting it, so it can be
used and tested without a server.
"""

from __future__ import annotations

import importlib.metadata
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flowyard import config
from flowyard.resources.meta import Resource, random_suffix
from flowyard.training.packaging import function_script, packages_key, trainer_command

DEFAULT_RUNTIME = "torch-distributed"
TERMINAL = ("Complete", "Failed")
LOG_WAIT_SECONDS = 300.0
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")

# The cache directory is the server's (FLOWYARD_PACKAGES_DIR, set on every trainer node); the
# client's own path is only the fallback for a command run some other way.
_INSTALL_PRELUDE = """import fcntl, os, subprocess, sys
_target = os.path.join(os.environ.get("FLOWYARD_PACKAGES_DIR") or {default_dir!r}, {key!r})
os.makedirs(_target, exist_ok=True)
with open(_target + ".lock", "w") as _lock:
    fcntl.flock(_lock, fcntl.LOCK_EX)
    if not os.path.exists(os.path.join(_target, ".installed")):
        print("flowyard: installing", {packages!r}, "into", _target, file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--target", _target, *{packages!r}],
                       check=True, timeout=900)
        open(os.path.join(_target, ".installed"), "w").close()
sys.path.insert(0, _target)
"""


def missing_packages(packages: list[str]) -> list[str]:
    """The requirements whose distribution is not installed in this environment."""
    missing = []
    for requirement in packages:
        match = _NAME.match(requirement)
        try:
            importlib.metadata.version(match.group(1) if match else requirement)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


def build_trainjob(
    func: Callable[..., Any],
    func_args: dict[str, Any] | None = None,
    *,
    num_nodes: int = 1,
    resources_per_node: dict[str, Any] | None = None,
    packages_to_install: list[str] | None = None,
    runtime: str = DEFAULT_RUNTIME,
    runtime_kind: str = "ClusterTrainingRuntime",
    name: str | None = None,
    namespace: str | None = None,
    torch: bool | None = None,
    env: dict[str, str] | None = None,
) -> Resource:
    """The TrainJob that runs ``func(**func_args)`` on ``num_nodes`` nodes.

    ``resources_per_node`` uses Kubernetes names (``{"cpu": 2, "memory": "4Gi",
    "nvidia.com/gpu": 1}``) as requests. ``torch`` (default: the runtime name contains "torch")
    runs the function under ``torchrun`` so ``torch.distributed`` initialises from the env.
    """
    script = function_script(func, func_args)
    missing = missing_packages(list(packages_to_install or []))
    if missing:
        default_dir = str(config.home() / "training" / "packages")
        prelude = _INSTALL_PRELUDE.format(
            default_dir=default_dir, key=packages_key(missing), packages=missing
        )
        script = prelude + script
    use_torch = ("torch" in runtime) if torch is None else torch
    trainer: dict[str, Any] = {"numNodes": num_nodes, "command": trainer_command(script, use_torch)}
    if resources_per_node:
        trainer["resourcesPerNode"] = {"requests": {k: v for k, v in resources_per_node.items()}}
    if env:
        trainer["env"] = [{"name": k, "value": v} for k, v in env.items()]
    metadata: dict[str, Any] = (
        {"name": name}
        if name
        else {"name": f"{func.__name__.replace('_', '-').lower()[:40]}-{random_suffix()}"}
    )
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": metadata,
        "spec": {
            "runtimeRef": {
                "apiGroup": "trainer.kubeflow.org",
                "kind": runtime_kind,
                "name": runtime,
            },
            "trainer": trainer,
        },
    }


class TrainerClient:
    """TrainJobs through a flowyard server (``client`` defaults to ``flowyard.Client()``)."""

    def __init__(self, client: Any = None, namespace: str = "default") -> None:
        if client is None:
            from flowyard.client import Client

            client = Client()
        self.client = client
        self.namespace = namespace

    def train(
        self, func: Callable[..., Any], func_args: dict[str, Any] | None = None, **options: Any
    ) -> str:
        """Submit ``func`` as a TrainJob (options as :func:`build_trainjob`); return its name."""
        options.setdefault("namespace", self.namespace)
        created = self.client.create(build_trainjob(func, func_args, **options))
        return str(created["metadata"]["name"])

    def list_runtimes(self) -> list[Resource]:
        cluster = self.client.list("clustertrainingruntimes")
        local = self.client.list("trainingruntimes", self.namespace)
        return [*_items(cluster), *_items(local)]

    def get_job(self, name: str) -> Resource:
        return dict(self.client.get("trainjobs", name, self.namespace))

    def list_jobs(self) -> list[Resource]:
        return _items(self.client.list("trainjobs", self.namespace))

    def get_job_logs(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[str]:
        """The log of one step, as upstream: ``node-<rank>`` (default ``node-0``),
        ``dataset-initializer`` or ``model-initializer``; ``follow`` streams until the job's
        processes end."""
        process = f"{name}-{step}" if re.fullmatch(r"node-\d+", step) else f"{name}-{step}-0"
        if follow:
            self._wait_for_log(name, process)
        for chunk in self.client.logs(
            "trainjobs", name, self.namespace, follow=follow, container=process
        ):
            yield chunk.decode(errors="replace")

    def _wait_for_log(self, name: str, process: str, timeout: float = LOG_WAIT_SECONDS) -> None:
        """Following a step that has not started yet waits for its log (as following a pod
        that is still being scheduled does), until the job ends or ``timeout`` passes."""
        from flowyard.errors import NotFoundError

        deadline = time.monotonic() + timeout
        while True:
            try:
                for _ in self.client.logs(
                    "trainjobs", name, self.namespace, container=process, tail_lines=0
                ):
                    pass
                return
            except NotFoundError:
                if job_status(self.get_job(name)) in TERMINAL or time.monotonic() >= deadline:
                    raise
            time.sleep(0.2)

    def wait_for_job_status(
        self,
        name: str,
        status: Iterable[str] = ("Complete",),
        timeout: float = 600.0,
        polling_interval: float = 1.0,
    ) -> Resource:
        """Block until :func:`job_status` is one of ``status`` (``Created``, ``Running``,
        ``Complete``, ``Failed``); RuntimeError if the job ends in another terminal state,
        TimeoutError after ``timeout`` seconds."""
        wanted = set(status)
        unknown = wanted - {"Created", "Running", *TERMINAL}
        if unknown:
            raise ValueError(
                f"status {sorted(unknown)}: expected a subset of Created, Running, Complete, Failed"
            )
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(name)
            current = job_status(job)
            if current in wanted:
                return job
            if current in TERMINAL:
                raise RuntimeError(f"TrainJob {name} ended as {current}, not {sorted(wanted)}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"TrainJob {name} did not reach {sorted(wanted)} in {timeout}s")
            time.sleep(polling_interval)

    def delete_job(self, name: str) -> None:
        self.client.delete("trainjobs", name, self.namespace)


def job_status(job: Resource) -> str:
    """The SDK's one-word status of a TrainJob: ``Complete``/``Failed`` from its conditions,
    ``Running`` while a replicated job has active processes, else ``Created``."""
    status = job.get("status") or {}
    true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    for terminal in TERMINAL:
        if terminal in true:
            return terminal
    if any(int(j.get("active") or 0) > 0 for j in status.get("jobsStatus") or []):
        return "Running"
    return "Created"


def _items(listing: Any) -> list[Resource]:
    items = getattr(listing, "items", listing)
    return [dict(i) for i in items]

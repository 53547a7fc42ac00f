"""Helpers for the tuning end-to-end tests: adapting Katib's examples to this host."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from flowyard.client import Client

TOY_TRAINER = Path(__file__).resolve().parent / "data" / "toy_mnist.py"
KATIB_SCRIPT = "/opt/pytorch-mnist/mnist.py"


def _swap(node: Any) -> Any:
    if isinstance(node, str):
        if node == "python3":
            return sys.executable
        return node.replace(KATIB_SCRIPT, str(TOY_TRAINER))
    if isinstance(node, list):
        return [_swap(item) for item in node]
    if isinstance(node, dict):
        return {k: _swap(v) for k, v in node.items()}
    return node


def adapt(example: dict[str, Any], **spec_overrides: Any) -> dict[str, Any]:
    """The example with its trial command pointed at :data:`TOY_TRAINER` (the only change
    besides ``spec_overrides``): Katib's examples run ``python3 /opt/pytorch-mnist/mnist.py``
    from an image we cannot pull; the interpreter is this test's Python."""
    out = copy.deepcopy(example)
    out["spec"]["trialTemplate"]["trialSpec"] = _swap(out["spec"]["trialTemplate"]["trialSpec"])
    out["spec"].update(spec_overrides)
    return out


def trials_of(client: Client, name: str, namespace: str) -> list[dict[str, Any]]:
    return client.list(
        "trials.kubeflow.org",
        namespace,
        label_selector=f"katib.kubeflow.org/experiment={name}",
    )


def wait_finished(client: Client, name: str, namespace: str, timeout: float = 90) -> dict[str, Any]:
    """Wait until the experiment is Succeeded or Failed; return it."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        exp = client.get("experiments.kubeflow.org", name, namespace)
        types = {
            c["type"]
            for c in (exp.get("status") or {}).get("conditions") or []
            if c.get("status") == "True"
        }
        if types & {"Succeeded", "Failed"}:
            return exp
        if time.monotonic() > deadline:
            raise TimeoutError(f"experiment {name} not finished: {exp.get('status')}")
        time.sleep(0.1)

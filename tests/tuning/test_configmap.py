"""core/v1 ConfigMap kind and trial templates from a ConfigMap (``trialTemplate.configMap``),
resolved as Katib does: the trial spec is the YAML in ``data[templatePath]``."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from flowyard.errors import InvalidError
from flowyard.resources.admission import admit
from flowyard.resources.conditions import get_condition
from flowyard.resources.registry import REGISTRY
from tests.support.server import RunningServer
from tests.tuning.support import adapt, trials_of, wait_finished

NS = "kubeflow"


def _configmap(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": data,
    }


def _experiment(random_example: dict[str, Any], name: str, cm: str, path: str) -> dict[str, Any]:
    """Katib's random example with its (adapted) trial spec moved into ConfigMap ``cm``; returns
    the experiment and, under ``_trialSpec``, the YAML text that belongs in the ConfigMap."""
    exp = adapt(random_example, maxTrialCount=3, parallelTrialCount=3)
    exp["metadata"]["name"] = name
    template = exp["spec"]["trialTemplate"]
    trial_spec = template.pop("trialSpec")
    template["configMap"] = {
        "configMapName": cm,
        "configMapNamespace": NS,
        "templatePath": path,
    }
    # No kind to default from (as in Katib): the conditions of a batch/v1 Job are given.
    template["successCondition"] = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    template["failureCondition"] = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    exp["_trialSpec"] = yaml.safe_dump(trial_spec)
    return exp


def test_configmap_kind_is_registered_and_validated() -> None:
    info = REGISTRY.resolve("configmaps")
    assert (info.api_version, info.kind, info.short_names) == ("v1", "ConfigMap", ("cm",))
    assert REGISTRY.resolve("cm") is info
    good = _configmap("c", {"a.yaml": "x: 1"})
    good.update(binaryData={"b": "AAEC"}, immutable=True)
    admit(good)
    with pytest.raises(InvalidError) as err:
        admit(_configmap("c", {"n": 3}))
    assert "data.n" in str(err.value)
    bad = _configmap("c", {})
    bad["immutable"] = "yes"
    with pytest.raises(InvalidError, match="immutable"):
        admit(bad)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("tuning-cm-home")).start()
    yield running
    running.stop()


def test_experiment_with_configmap_template_succeeds(
    server: RunningServer, random_example: dict[str, Any]
) -> None:
    exp = _experiment(random_example, "cm-random", "trial-templates", "random/job.yaml")
    text = exp.pop("_trialSpec")
    with server.client() as client:
        client.create(_configmap("trial-templates", {"random/job.yaml": text, "other": "x"}))
        client.create(exp)
        done = wait_finished(client, "cm-random", NS, timeout=60)
        trials = trials_of(client, "cm-random", NS)
    succeeded = get_condition(done, "Succeeded")
    assert succeeded is not None and succeeded["status"] == "True", (done, server.output())
    assert len(trials) == 3
    for trial in trials:
        run = trial["spec"]["runSpec"]
        assert run["kind"] == "Job" and run["metadata"]["name"] == trial["metadata"]["name"]
        command = run["spec"]["template"]["spec"]["containers"][0]["command"]
        lr = {p["name"]: p["value"] for p in trial["spec"]["parameterAssignments"]}["lr"]
        assert f"--lr={lr}" in command
        assert get_condition(trial, "Succeeded")["status"] == "True"  # type: ignore[index]


@pytest.mark.parametrize(
    ("case", "reason"),
    [("missing", "not found: create it"), ("key", "templatePath"), ("params", "momentum")],
)
def test_unresolvable_configmap_template_is_rejected_at_apply_time(
    server: RunningServer, random_example: dict[str, Any], case: str, reason: str
) -> None:
    """As Katib's webhook: the Experiment is refused, naming the ConfigMap and the fix."""
    name = f"cm-bad-{case}"
    exp = _experiment(random_example, name, f"tpl-{case}", "job.yaml")
    text = exp.pop("_trialSpec")
    with server.client() as client:
        if case == "key":
            client.create(_configmap(f"tpl-{case}", {"other.yaml": text}))
        elif case == "params":  # the template does not use ${trialParameters.momentum}
            broken = text.replace("${trialParameters.momentum}", "0.5")
            client.create(_configmap(f"tpl-{case}", {"job.yaml": broken}))
        with pytest.raises(InvalidError) as rejected:
            client.create(copy.deepcopy(exp))
        assert trials_of(client, name, NS) == []
    assert any(c.field.startswith("spec.trialTemplate") for c in rejected.value.causes)
    assert f"tpl-{case}" in rejected.value.message and reason in rejected.value.message

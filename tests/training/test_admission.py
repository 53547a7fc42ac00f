"""Kinds, defaulting and validation of the training kinds (admission)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flowyard.errors import InvalidError
from flowyard.executors.capacity import Capacity
from flowyard.resources import REGISTRY, admit
from flowyard.resources.registry import KindRegistry
from flowyard.training import register_kinds
from flowyard.training import trainjob as tj
from flowyard.training.capacity import set_capacity_source

from .helpers import reference, replica

V1 = "kubeflow.org/v1"
V2 = "trainer.kubeflow.org/v1alpha1"


@pytest.fixture(autouse=True)
def _kinds() -> None:
    register_kinds()


def pytorch(**specs: Any) -> dict[str, Any]:
    return {
        "apiVersion": V1,
        "kind": "PyTorchJob",
        "metadata": {"name": "job"},
        "spec": {"pytorchReplicaSpecs": specs},
    }


def causes_of(obj: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidError) as info:
        admit(obj)
    return {c.field: c.message for c in info.value.causes}


def test_register_kinds_is_idempotent_and_uses_crd_names() -> None:
    registry = KindRegistry()
    register_kinds(registry)
    register_kinds(registry)
    info = registry.get(V1, "PyTorchJob")
    assert info.plural == "pytorchjobs"
    assert [c.name for c in info.columns] == ["State", "Age"]
    assert len(info.defaulters) == 2 and len(info.validators) == 1
    assert registry.get(V2, "ClusterTrainingRuntime").namespaced is False
    assert registry.resolve("tfjobs").kind == "TFJob"
    assert registry.resolve("trainjob").group == "trainer.kubeflow.org"
    for kind in ("XGBoostJob", "MPIJob"):
        assert registry.get(V1, kind).schema_file == f"kubeflow.org.v1.{kind}.json.gz"
    assert registry.get(V2, "TrainingRuntime").namespaced is True


@pytest.mark.parametrize(
    "path",
    [
        "training-operator-v1/examples/pytorch_simple.yaml",
        "training-operator-v1/examples/tfjob_simple.yaml",
        "training-operator-v1/examples/tfjob_dist_mnist.yaml",  # image with a stand-in
        "trainer-v2/runtimes/torch_distributed.yaml",
        "trainer-v2/examples/01-multi-node.yaml",
    ],
)
def test_upstream_examples_pass_admission(path: str) -> None:
    obj = reference(path)
    admit(obj)
    assert obj["spec"]


def test_gpu_example_passes_where_gpus_exist_and_says_why_not_elsewhere() -> None:
    obj = reference("training-operator-v1/examples/pytorch_job_mnist_gloo.yaml")
    set_capacity_source(lambda: Capacity(cpu=2, memory=1 << 34, gpu_ids=(), max_processes=8))
    try:
        causes = causes_of(copy.deepcopy(obj))
        assert "2 GPUs" in causes["spec.pytorchReplicaSpecs"]
        set_capacity_source(lambda: Capacity(2, 1 << 34, ("0", "1"), 8))
        admit(obj)  # has no command but its image has a flowyard stand-in
    finally:
        set_capacity_source(None)


def test_example_without_command_names_every_container() -> None:
    obj = reference("training-operator-v1/examples/tfjob_dist_mnist.yaml")
    for spec in obj["spec"]["tfReplicaSpecs"].values():  # an image flowyard has no stand-in for
        spec["template"]["spec"]["containers"][0]["image"] = "example.com/tf-dist-mnist:v2"
    causes = causes_of(obj)
    for rtype in ("Chief", "PS", "Worker"):
        message = causes[f"spec.tfReplicaSpecs[{rtype}].template.spec.containers[0].command"]
        assert "not inside the image" in message and "command" in message


def test_pytorch_defaults_as_upstream() -> None:
    obj = pytorch(master=replica("pytorch", "pass"), WORKER=replica("pytorch", "pass", 2))
    del obj["spec"]["pytorchReplicaSpecs"]["master"]["replicas"]
    admit(obj)
    spec = obj["spec"]
    assert set(spec["pytorchReplicaSpecs"]) == {"Master", "Worker"}
    master = spec["pytorchReplicaSpecs"]["Master"]
    assert master["replicas"] == 1 and master["restartPolicy"] == "OnFailure"
    ports = master["template"]["spec"]["containers"][0]["ports"]
    assert ports == [{"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"}]
    assert spec["runPolicy"] == {"cleanPodPolicy": "None", "suspend": False}
    assert spec["nprocPerNode"] == "auto"


def test_pytorch_elastic_defaults() -> None:
    obj = pytorch(Worker=replica("pytorch", "pass", 3))
    obj["spec"]["elasticPolicy"] = {"maxReplicas": 4}
    admit(obj)
    assert obj["spec"]["elasticPolicy"]["minReplicas"] == 4
    obj = pytorch(Worker=replica("pytorch", "pass", 3))
    obj["spec"]["elasticPolicy"] = {"rdzvBackend": "c10d"}
    admit(obj)
    assert (
        obj["spec"]["elasticPolicy"]["minReplicas"]
        == 3
        == obj["spec"]["elasticPolicy"]["maxReplicas"]
    )


def test_tf_xgboost_mpi_defaults() -> None:
    tf = {
        "apiVersion": V1,
        "kind": "TFJob",
        "metadata": {"name": "tf"},
        "spec": {
            "tfReplicaSpecs": {
                "ps": replica("tensorflow", "pass"),
                "chief": replica("tensorflow", "pass"),
            }
        },
    }
    admit(tf)
    assert set(tf["spec"]["tfReplicaSpecs"]) == {"PS", "Chief"}
    assert tf["spec"]["successPolicy"] == ""
    assert tf["spec"]["tfReplicaSpecs"]["PS"]["restartPolicy"] == "Never"
    port = tf["spec"]["tfReplicaSpecs"]["PS"]["template"]["spec"]["containers"][0]["ports"][0]
    assert port == {"name": "tfjob-port", "containerPort": 2222, "protocol": "TCP"}
    xgb = {
        "apiVersion": V1,
        "kind": "XGBoostJob",
        "metadata": {"name": "x"},
        "spec": {"xgbReplicaSpecs": {"Master": replica("xgboost", "pass")}},
    }
    admit(xgb)
    port = xgb["spec"]["xgbReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["ports"][0]
    assert port == {"name": "xgboostjob-port", "containerPort": 9999, "protocol": "TCP"}
    mpi = {
        "apiVersion": V1,
        "kind": "MPIJob",
        "metadata": {"name": "m"},
        "spec": {
            "mpiReplicaSpecs": {
                "launcher": replica("mpi", "pass"),
                "worker": {"template": replica("mpi", "pass")["template"]},
            }
        },
    }
    admit(mpi)
    spec = mpi["spec"]
    assert spec["cleanPodPolicy"] == "None" == spec["runPolicy"]["cleanPodPolicy"]
    assert spec["mpiReplicaSpecs"]["Worker"]["replicas"] == 0
    assert spec["mpiReplicaSpecs"]["Launcher"]["restartPolicy"] == "Never"
    assert spec["slotsPerWorker"] == 1


def test_bad_input_gives_field_paths() -> None:
    obj = pytorch(
        Master=replica("pytorch", "pass"),
        Worker=replica("pytorch", "pass", -1),
        Chief=replica("pytorch", "pass"),
    )
    no_cmd = obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    del no_cmd["command"]
    causes = causes_of(obj)
    assert "greater than or equal to 0" in causes["spec.pytorchReplicaSpecs[Worker].replicas"]
    assert '"Master", "Worker"' in causes["spec.pytorchReplicaSpecs[Chief]"]
    assert (
        "on this machine"
        in causes["spec.pytorchReplicaSpecs[Master].template.spec.containers[0].command"]
    )


def test_upstream_webhook_rules() -> None:
    obj = pytorch(Master=replica("pytorch", "pass", 2), Worker=replica("other", "pass"))
    causes = causes_of(obj)
    assert causes["spec.pytorchReplicaSpecs[Master].replicas"] == "Forbidden: must be 1"
    assert (
        "with name pytorch" in causes["spec.pytorchReplicaSpecs[Worker].template.spec.containers"]
    )
    bad_name = pytorch(Master=replica("pytorch", "pass"))
    bad_name["metadata"]["name"] = "1job"
    assert "DNS-1035" in causes_of(bad_name)["metadata.name"]
    tf = {
        "apiVersion": V1,
        "kind": "TFJob",
        "metadata": {"name": "tf"},
        "spec": {
            "tfReplicaSpecs": {
                "Chief": replica("tensorflow", "pass"),
                "Master": replica("tensorflow", "pass"),
            }
        },
    }
    assert "more than 1 Chief or Master" in causes_of(tf)["spec.tfReplicaSpecs"]
    xgb = {
        "apiVersion": V1,
        "kind": "XGBoostJob",
        "metadata": {"name": "x"},
        "spec": {"xgbReplicaSpecs": {"Worker": replica("xgboost", "pass")}},
    }
    assert "must be present" in causes_of(xgb)["spec.xgbReplicaSpecs[Master]"]


def test_gang_larger_than_machine_is_refused_at_admission() -> None:
    set_capacity_source(lambda: Capacity(cpu=2, memory=1 << 30, gpu_ids=(), max_processes=8))
    try:
        obj = pytorch(Master=replica("pytorch", "pass"), Worker=replica("pytorch", "pass", 20))
        message = causes_of(obj)["spec.pytorchReplicaSpecs"]
        assert "21 processes" in message and "at most 8" in message
        cpu = pytorch(Master=replica("pytorch", "pass", resources={"requests": {"cpu": "3"}}))
        assert "3 CPU cores" in causes_of(cpu)["spec.pytorchReplicaSpecs"]
    finally:
        set_capacity_source(None)


def trainjob(**trainer: Any) -> dict[str, Any]:
    return {
        "apiVersion": V2,
        "kind": "TrainJob",
        "metadata": {"name": "tj"},
        "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": trainer},
    }


def test_trainjob_schema_defaults_and_runtime_lookup() -> None:
    runtime = reference("trainer-v2/runtimes/torch_distributed.yaml")
    obj = trainjob(numNodes=2, command=["python3", "-c", "pass"])
    admit(obj)
    assert obj["spec"]["runtimeRef"] == {
        "name": "torch-distributed",
        "kind": "ClusterTrainingRuntime",
        "apiGroup": "trainer.kubeflow.org",
    }
    assert obj["spec"]["suspend"] is False
    found = {("ClusterTrainingRuntime", "", "torch-distributed"): runtime}
    tj.set_runtime_lookup(lambda k, ns, n: found.get((k, ns, n)))
    set_capacity_source(lambda: Capacity(cpu=2, memory=1 << 30, gpu_ids=(), max_processes=8))
    try:
        missing = trainjob(command=["python3"])
        missing["spec"]["runtimeRef"]["name"] = "nope"
        assert (
            'ClusterTrainingRuntime "nope" not found' in causes_of(missing)["spec.runtimeRef.name"]
        )
        assert "numNodes" in str(causes_of(trainjob(numNodes=50, command=["python3"])))
        assert "spec.trainer.command" in causes_of(trainjob(numNodes=1))
        reserved = trainjob(command=["x"], env=[{"name": "PET_NNODES", "value": "3"}])
        assert "reserved" in causes_of(reserved)["spec.trainer.env[0]"]
        bad_uri = trainjob(command=["x"])
        bad_uri["spec"]["initializer"] = {"dataset": {"storageUri": "gs://bucket/x"}}
        assert "s3://" in causes_of(bad_uri)["spec.initializer.dataset.storageUri"]
        assert (
            "greater than or equal to 1"
            in causes_of(trainjob(numNodes=0, command=["x"]))["spec.trainer.numNodes"]
        )
    finally:
        tj.set_runtime_lookup(None)
        set_capacity_source(None)


def test_runtime_validation() -> None:
    runtime = {
        "apiVersion": V2,
        "kind": "TrainingRuntime",
        "metadata": {"name": "r"},
        "spec": {"mlPolicy": {"torch": {}, "mpi": {}}, "template": {"spec": {}}},
    }
    causes = causes_of(runtime)
    assert "spec.template.spec.replicatedJobs" in causes and "spec.mlPolicy" in causes


def test_registry_default_instance_is_module_constant() -> None:
    from flowyard.training.kinds import PYTORCHJOB

    assert REGISTRY.get(V1, "PyTorchJob") is PYTORCHJOB

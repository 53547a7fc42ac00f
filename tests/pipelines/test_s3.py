# no `from __future__ import annotations`: kfp reads the annotations as types
"""``s3://`` pipeline roots and importers end to end, against a real moto S3 server on loopback:
artifacts keep their ``s3://`` URI, steps read and write a local ``.path``, flowyard uploads
outputs after a step and downloads inputs before one."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kfp import dsl

from flowyard.errors import InvalidError
from flowyard.pipelines import remote
from tests.pipelines.conftest import RunFn, log_of, task
from tests.support.s3 import moto_server, s3_client

IMAGE = "python:3.11"
BUCKET = "flowyard-pipelines"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    with moto_server(tmp_path_factory.mktemp("moto")) as env:
        s3_client(env).create_bucket(Bucket=BUCKET)
        yield env


@pytest.fixture
def s3_env(moto: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The control plane's environment points at moto (it forwards these to the steps)."""
    for key, value in moto.items():
        monkeypatch.setenv(key, value)
    return moto


@dsl.component(base_image=IMAGE)
def produce(text: str, data: dsl.Output[dsl.Dataset], model: dsl.Output[dsl.Model]):
    import os

    assert data.uri.startswith("s3://"), data.uri
    assert not data.path.startswith("/s3/"), data.path  # a staged local file, not KFP's mount
    with open(data.path, "w") as handle:
        handle.write(text)
    data.metadata["rows"] = 1
    os.makedirs(model.path)
    with open(os.path.join(model.path, "weights.txt"), "w") as handle:
        handle.write(text.upper())
    model.metadata["framework"] = "toy"


@dsl.component(base_image=IMAGE)
def consume(data: dsl.Input[dsl.Dataset], model: dsl.Input[dsl.Model]) -> str:
    import os

    with open(data.path) as handle:
        text = handle.read()
    with open(os.path.join(model.path, "weights.txt")) as handle:
        weights = handle.read()
    return f"{text}|{weights}|{data.metadata['rows']}|{model.metadata['framework']}|{data.uri}"


@dsl.pipeline
def through_s3(text: str = "hello") -> str:
    made = produce(text=text)
    return consume(data=made.outputs["data"], model=made.outputs["model"]).output


def test_dataset_and_model_pass_through_an_s3_pipeline_root(
    s3_env: dict[str, str], run_pipeline: RunFn
) -> None:
    root = f"s3://{BUCKET}/root"
    snap = run_pipeline(through_s3, {"text": "abc"}, pipeline_root=root, enable_caching=False)
    assert snap["phase"] == "Succeeded", (snap["message"], log_of(snap, "consume"))
    data_uri = task(snap, "produce")["outputs"]["artifacts"]["data"][0]["uri"]
    assert data_uri == f"{root}/through-s3/{snap['runId']}/produce/data"
    assert snap["outputs"]["parameters"]["Output"] == f"abc|ABC|1|toy|{data_uri}"
    client = s3_client(s3_env)
    prefix = f"root/through-s3/{snap['runId']}/produce"
    body = client.get_object(Bucket=BUCKET, Key=f"{prefix}/data")["Body"].read()
    assert body == b"abc"
    weights = client.get_object(Bucket=BUCKET, Key=f"{prefix}/model/weights.txt")["Body"].read()
    assert weights == b"ABC"
    assert "flowyard: downloaded" in log_of(snap, "consume")


@dsl.component(base_image=IMAGE)
def read_text(data: dsl.Input[dsl.Dataset]) -> str:
    with open(data.path) as handle:
        return handle.read() + "|" + data.uri + "|" + data.metadata["origin"]


@dsl.container_component
def shout(data: dsl.Input[dsl.Dataset], out: dsl.Output[dsl.Artifact]):
    return dsl.ContainerSpec(
        image="alpine", command=["sh", "-c", 'tr a-z A-Z < "$0" > "$1"'], args=[data.path, out.path]
    )


@dsl.pipeline
def import_s3(uri: str) -> str:
    imported = dsl.importer(
        artifact_uri=uri, artifact_class=dsl.Dataset, metadata={"origin": "moto"}
    )
    shout(data=imported.output)
    return read_text(data=imported.output).output


def test_importer_of_an_s3_object_with_a_local_root(
    s3_env: dict[str, str], run_pipeline: RunFn
) -> None:
    s3_client(s3_env).put_object(Bucket=BUCKET, Key="imports/hello.txt", Body=b"hi there")
    uri = f"s3://{BUCKET}/imports/hello.txt"
    snap = run_pipeline(import_s3, {"uri": uri}, enable_caching=False)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"]["Output"] == f"hi there|{uri}|moto"
    out = task(snap, "shout")["outputs"]["artifacts"]["out"][0]["uri"]
    assert Path(out).read_text() == "HI THERE"  # a container component got the staged path


def test_missing_s3_input_fails_the_step_naming_it(
    s3_env: dict[str, str], run_pipeline: RunFn
) -> None:
    uri = f"s3://{BUCKET}/imports/absent.txt"
    snap = run_pipeline(import_s3, {"uri": uri}, enable_caching=False)
    assert snap["phase"] == "Failed"
    assert f"input artifact 'data': {uri} does not exist" in log_of(snap, "read-text")


@dsl.component(base_image=IMAGE)
def probe_env(out: dsl.Output[dsl.Artifact]) -> str:
    import os

    with open(out.path, "w") as handle:
        handle.write("x")
    return os.environ.get("AWS_SECRET_ACCESS_KEY", "absent")


@dsl.pipeline
def env_pipeline() -> str:
    return probe_env().outputs["Output"]


def test_credentials_reach_only_steps_that_stage_remote_artifacts(
    s3_env: dict[str, str], run_pipeline: RunFn
) -> None:
    remote_run = run_pipeline(env_pipeline, pipeline_root=f"s3://{BUCKET}/env")
    assert remote_run["outputs"]["parameters"]["Output"] == "testing"
    local_run = run_pipeline(env_pipeline, enable_caching=False)
    assert local_run["outputs"]["parameters"]["Output"] == "absent"


def test_pipeline_roots_are_checked() -> None:
    assert remote.pipeline_root("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert remote.pipeline_root("file:///data/root") == "/data/root"
    assert remote.pipeline_root("rel") == os.path.abspath("rel")
    with pytest.raises(InvalidError, match="gs:// is not supported"):
        remote.pipeline_root("gs://bucket/x")
    with pytest.raises(InvalidError, match="names no bucket"):
        remote.pipeline_root("s3://")

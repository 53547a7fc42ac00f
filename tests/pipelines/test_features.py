"""KFP DSL features, each compiled with the real kfp SDK in the test and run end to end."""

# Components are written the way KFP users write them: typing.List/Optional annotations, list
# and dict defaults in pipeline signatures, open() without a context manager in one-liners.
# ruff: noqa: UP006, UP035, UP045, B006, SIM115

import json
from pathlib import Path
from typing import List, NamedTuple, Optional

from kfp import dsl
from kfp.dsl import (
    Artifact,
    ClassificationMetrics,
    Collected,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
    PipelineTaskFinalStatus,
)

from .conftest import RunFn, log_of, task

IMG = "python:3.11"


# ---------------------------------------------------------------- parameters


@dsl.component(base_image=IMG)
def typed(
    s: str,
    i: int,
    f: float,
    b: bool,
    lst: list,
    d: dict,
    opt: Optional[str] = None,
    dflt: int = 7,
) -> str:
    import json

    assert isinstance(i, int) and isinstance(f, float) and isinstance(b, bool)
    return json.dumps([s, i, f, b, lst, d, opt, dflt])


@dsl.pipeline
def params_pipeline(
    s: str = "x",
    i: int = 1,
    f: float = 0.5,
    b: bool = False,
    lst: list = [1, "a"],
    d: dict = {"k": [1]},
) -> str:
    return typed(s=s, i=i, f=f, b=b, lst=lst, d=d).output


def test_parameters_of_every_type(run_pipeline: RunFn) -> None:
    snap = run_pipeline(params_pipeline, {"i": 3, "b": True, "lst": [2]})
    assert snap["phase"] == "Succeeded", snap["message"]
    out = json.loads(snap["outputs"]["parameters"]["Output"])
    assert out == ["x", 3, 0.5, True, [2], {"k": [1]}, None, 7]


# ---------------------------------------------------------------- artifacts, NamedTuple


@dsl.component(base_image=IMG)
def produce(
    data: Output[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    cm: Output[ClassificationMetrics],
    md: Output[Markdown],
) -> NamedTuple("Outs", [("n", int), ("name", str)]):
    from collections import namedtuple

    with open(data.path, "w") as fh:
        fh.write("1,2,3")
    data.metadata["rows"] = 3
    with open(model.path, "w") as fh:
        fh.write("weights")
    model.metadata["framework"] = "none"
    metrics.log_metric("accuracy", 0.9)
    cm.log_confusion_matrix(["a", "b"], [[1, 0], [0, 1]])
    with open(md.path, "w") as fh:
        fh.write("# hi")
    return namedtuple("Outs", ["n", "name"])(3, "ds")


@dsl.component(base_image=IMG)
def consume(data: Input[Dataset], model: Input[Model], n: int, name: str) -> str:
    text = open(data.path).read()
    weights = open(model.path).read()
    return f"{name}:{n}:{text}:{data.metadata['rows']}:{weights}:{data.uri == data.path}"


@dsl.pipeline
def artifacts_pipeline() -> str:
    p = produce()
    return consume(
        data=p.outputs["data"], model=p.outputs["model"], n=p.outputs["n"], name=p.outputs["name"]
    ).output


def test_artifacts_metadata_and_namedtuple(run_pipeline: RunFn) -> None:
    snap = run_pipeline(artifacts_pipeline)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"]["Output"] == "ds:3:1,2,3:3:weights:True"
    arts = task(snap, "produce")["outputs"]["artifacts"]
    assert arts["metrics"][0]["metadata"] == {"accuracy": 0.9}
    assert arts["cm"][0]["metadata"]["confusionMatrix"]["annotationSpecs"][0] == {
        "displayName": "a"
    }
    assert arts["model"][0]["type"]["schemaTitle"] == "system.Model"
    uri = arts["data"][0]["uri"]
    assert uri.startswith(snap["pipelineRoot"]) and f"/{snap['runId']}/produce/data" in uri
    assert task(snap, "produce")["outputs"]["parameters"] == {"n": 3, "name": "ds"}


# ---------------------------------------------------------------- control flow


@dsl.component(base_image=IMG)
def number(x: int) -> int:
    return x


@dsl.component(base_image=IMG)
def label(x: int, tag: str) -> str:
    return f"{tag}{x}"


@dsl.component(base_image=IMG)
def show(msg: str) -> str:
    print("MSG", msg)
    return msg


@dsl.pipeline
def branches(x: int = 0) -> str:
    n = number(x=x)
    with dsl.If(n.output > 1):
        big = label(x=n.output, tag="big")
    with dsl.Elif(n.output < 0):
        neg = label(x=n.output, tag="neg")
    with dsl.Else():
        small = label(x=n.output, tag="small")
    chosen = dsl.OneOf(big.output, neg.output, small.output)
    return show(msg=chosen).output


def test_if_elif_else_oneof(run_pipeline: RunFn) -> None:
    for x, expected in ((5, "big5"), (-2, "neg-2"), (1, "small1")):
        snap = run_pipeline(branches, {"x": x})
        assert snap["phase"] == "Succeeded", snap["message"]
        assert snap["outputs"]["parameters"]["Output"] == expected
    skipped = [t for t in snap["tasks"].values() if t["reason"] == "ConditionNotMet"]
    assert len(skipped) == 2


@dsl.component(base_image=IMG)
def double(x: int) -> int:
    return 2 * x


@dsl.component(base_image=IMG)
def total(xs: List[int]) -> str:
    import json

    assert all(isinstance(v, int) for v in xs), xs
    return json.dumps(xs)


@dsl.component(base_image=IMG)
def make_list(n: int) -> List[int]:
    return list(range(n))


@dsl.component(base_image=IMG)
def pair(a: int, b: str) -> str:
    return f"{a}{b}"


@dsl.pipeline
def loops(items: List[int] = [1, 2, 3]) -> str:
    with dsl.ParallelFor(items, parallelism=2) as item:
        d = double(x=item)
    from_param = total(xs=Collected(d.output))
    gen = make_list(n=2)
    with dsl.ParallelFor(gen.output) as g, dsl.ParallelFor(["a", "b"]) as letter:
        pair(a=g, b=letter)
    with dsl.ParallelFor([{"v": 4}, {"v": 5}]) as rec:
        double(x=rec.v)
    return from_param.output


def test_parallel_for_collected_nested(run_pipeline: RunFn) -> None:
    snap = run_pipeline(loops, {"items": [3, 1, 4]})
    assert snap["phase"] == "Succeeded", snap["message"]
    assert json.loads(snap["outputs"]["parameters"]["Output"]) == [6, 2, 8]
    loop = next(t for t in snap["tasks"].values() if t["kind"] == "loop" and t.get("parallelism"))
    assert loop["parallelism"] == 2 and loop["iterations"] == 3
    pairs = sorted(
        t["outputs"]["parameters"]["Output"] for t in snap["tasks"].values() if t["name"] == "pair"
    )
    assert pairs == ["0a", "0b", "1a", "1b"]
    subvars = sorted(
        t["outputs"]["parameters"]["Output"]
        for t in snap["tasks"].values()
        if t["name"].startswith("double-") and t["kind"] == "container"
    )
    assert subvars == [8, 10]


@dsl.component(base_image=IMG)
def write(text: str, out: Output[Dataset]) -> None:
    with open(out.path, "w") as fh:
        fh.write(text)


@dsl.component(base_image=IMG)
def join_all(parts: Input[List[Dataset]]) -> str:
    return "+".join(open(p.path).read() for p in parts)


@dsl.pipeline
def collected_artifacts() -> str:
    with dsl.ParallelFor(["a", "b", "c"]) as t:
        w = write(text=t)
    return join_all(parts=Collected(w.outputs["out"])).output


def test_collected_artifacts(run_pipeline: RunFn) -> None:
    snap = run_pipeline(collected_artifacts)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"]["Output"] == "a+b+c"


# ---------------------------------------------------------------- exit handler, failures


@dsl.component(base_image=IMG)
def fail(msg: str) -> None:
    raise SystemExit(f"boom {msg}")


@dsl.component(base_image=IMG)
def report(status: PipelineTaskFinalStatus) -> str:
    return f"{status.state}|{status.pipeline_task_name}|{status.error_message}"


@dsl.pipeline
def exit_handled(should_fail: bool = True) -> None:
    final = report()
    with dsl.ExitHandler(final):
        with dsl.If(should_fail == True):  # noqa: E712 - kfp compiles the comparison
            fail(msg="x")
        show(msg="inside")


def test_exit_handler_final_status(run_pipeline: RunFn) -> None:
    snap = run_pipeline(exit_handled)
    assert snap["phase"] == "Failed"
    assert snap["failedTasks"] == ["exit-handler-1/condition-2/fail"]
    status = task(snap, "report")["outputs"]["parameters"]["Output"]
    assert status.startswith("FAILED|exit-handler-1|")
    assert "boom x" in log_of(snap, "exit-handler-1/condition-2/fail")
    ok = run_pipeline(exit_handled, {"should_fail": False})
    assert ok["phase"] == "Succeeded"
    assert task(ok, "report")["outputs"]["parameters"]["Output"] == "SUCCEEDED|exit-handler-1|None"


@dsl.pipeline
def failure_semantics() -> None:
    bad = fail(msg="y")
    show(msg="after-bad").after(bad)
    ok = show(msg="independent")
    show(msg="after-ok").after(ok)
    cleanup = show(msg="cleanup").after(bad)
    cleanup.ignore_upstream_failure()


def test_failure_skips_dependents_and_keeps_independent_branches(run_pipeline: RunFn) -> None:
    snap = run_pipeline(failure_semantics)
    assert snap["phase"] == "Failed"
    assert snap["failedTasks"] == ["fail"]
    assert "task 'fail' failed" in snap["message"]
    states = {t["name"]: (t["state"], t["reason"]) for t in snap["tasks"].values() if t["id"]}
    assert states["show"] == ("Skipped", "UpstreamFailed")
    assert states["show-2"][0] == "Succeeded" and states["show-3"][0] == "Succeeded"
    assert states["show-4"][0] == "Succeeded"  # ignore_upstream_failure


# ---------------------------------------------------------------- nested pipelines, placeholders


@dsl.pipeline
def inner(x: int) -> int:
    return double(x=double(x=x).output).output


@dsl.pipeline
def outer(x: int = 3) -> int:
    return inner(x=inner(x=x).output).output


def test_nested_pipelines(run_pipeline: RunFn) -> None:
    snap = run_pipeline(outer)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"]["Output"] == 48


@dsl.component(base_image=IMG)
def echo_env(job: str, task_name: str, jid: str) -> str:
    import os

    return f"{job}|{task_name}|{jid}|{os.environ['FOO']}"


@dsl.pipeline
def placeholders_env() -> str:
    t = echo_env(
        job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        task_name=dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
        jid=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )
    t.set_env_variable("FOO", "bar")
    return t.output


def test_pipeline_task_placeholders_and_env(run_pipeline: RunFn) -> None:
    snap = run_pipeline(placeholders_env, run_name="my-run")
    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"]["Output"] == f"my-run|echo-env|{snap['runId']}|bar"


@dsl.container_component
def shell(msg: str, out: dsl.OutputPath(str), flag: Optional[str] = None):  # type: ignore[valid-type]
    return dsl.ContainerSpec(
        image="alpine:3",
        command=["sh", "-c", 'echo "$0 $1" > "$2"'],
        args=[
            dsl.ConcatPlaceholder(["<", msg, ">"]),
            dsl.IfPresentPlaceholder(input_name="flag", then=[flag], else_=["noflag"]),
            out,
        ],
    )


@dsl.pipeline
def container_pipeline() -> str:
    a = shell(msg="hi")
    b = shell(msg=a.outputs["out"], flag="F")
    return b.outputs["out"]


def test_container_component_placeholders(run_pipeline: RunFn) -> None:
    snap = run_pipeline(container_pipeline)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"]["Output"] == "<<hi> noflag\n> F\n"
    assert task(snap, "shell")["image"] == "alpine:3"


# ---------------------------------------------------------------- retry, caching, workspace


@dsl.component(base_image=IMG)
def flaky(marker: str) -> int:
    import os

    count = int(open(marker).read()) if os.path.exists(marker) else 0
    with open(marker, "w") as fh:
        fh.write(str(count + 1))
    if count < 2:
        raise SystemExit(f"attempt {count + 1} fails")
    return count + 1


@dsl.pipeline
def retrying(marker: str) -> int:
    return (
        flaky(marker=marker)
        .set_retry(num_retries=3, backoff_duration="1s", backoff_factor=1.0)
        .set_caching_options(False)
        .output
    )


def test_set_retry_with_backoff(run_pipeline: RunFn, tmp_path: Path) -> None:
    snap = run_pipeline(retrying, {"marker": str(tmp_path / "count")})
    assert snap["phase"] == "Succeeded", snap["message"]
    node = task(snap, "flaky")
    assert node["attempt"] == 3 and node["outputs"]["parameters"]["Output"] == 3
    assert len(node["attemptErrors"]) == 2
    assert log_of(snap, "flaky").count("---- flowyard: flaky attempt") == 3


@dsl.component(base_image=IMG)
def stamp(tag: str, out: Output[Artifact]) -> str:
    import time

    with open(out.path, "w") as fh:
        fh.write(tag)
    return f"{tag}-{time.time_ns()}"


@dsl.pipeline
def cached(tag: str = "a") -> None:
    stamp(tag=tag)
    stamp(tag=tag).set_caching_options(False)


def test_caching_semantics(run_pipeline: RunFn) -> None:
    first = run_pipeline(cached)
    second = run_pipeline(cached)
    assert task(second, "stamp")["state"] == "Cached"
    assert task(second, "stamp")["cachedFrom"]["runId"] == first["runId"]
    assert task(second, "stamp")["outputs"] == task(first, "stamp")["outputs"]
    assert task(second, "stamp-2")["state"] == "Succeeded"  # per-task opt-out
    other = run_pipeline(cached, {"tag": "b"})
    assert task(other, "stamp")["state"] == "Succeeded"  # different inputs -> new key
    no_cache = run_pipeline(cached, enable_caching=False)
    assert task(no_cache, "stamp")["state"] == "Succeeded"


@dsl.component(base_image=IMG)
def ws_write(path: str) -> None:
    with open(path + "/shared.txt", "w") as fh:
        fh.write("from-step-1")


@dsl.component(base_image=IMG)
def ws_read(path: str) -> str:
    return open(path + "/shared.txt").read()


@dsl.pipeline(pipeline_config=dsl.PipelineConfig(workspace=dsl.WorkspaceConfig(size="1Gi")))
def workspace_pipeline() -> str:
    w = ws_write(path=dsl.WORKSPACE_PATH_PLACEHOLDER)
    return ws_read(path=dsl.WORKSPACE_PATH_PLACEHOLDER).after(w).output


def test_pipeline_config_workspace(run_pipeline: RunFn) -> None:
    snap = run_pipeline(workspace_pipeline)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"]["Output"] == "from-step-1"
    assert (Path(snap["workspace"]) / "shared.txt").exists()


# ---------------------------------------------------------------- importer


@dsl.component(base_image=IMG)
def read_import(a: Input[Dataset]) -> str:
    return open(a.path).read() + "|" + str(a.metadata.get("k"))


def test_importer_local_and_http(run_pipeline: RunFn, tmp_path: Path) -> None:
    import http.server
    import threading

    src = tmp_path / "src.txt"
    src.write_text("local-data")
    (tmp_path / "served.txt").write_text("http-data")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/served.txt"

    @dsl.pipeline
    def imports(uri: str) -> str:
        local = dsl.importer(artifact_uri=uri, artifact_class=Dataset, metadata={"k": "v"})
        remote = dsl.importer(artifact_uri=url, artifact_class=Dataset)
        a = read_import(a=local.output)
        b = read_import(a=remote.output)
        return show(msg=a.output).after(b).output

    try:
        snap = run_pipeline(imports, {"uri": str(src)})
    finally:
        server.shutdown()
        server.server_close()
    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"]["Output"] == "local-data|v"
    assert task(snap, "read-import-2")["outputs"]["parameters"]["Output"] == "http-data|None"
    remote = task(snap, "importer-2")["outputs"]["artifacts"]["artifact"][0]
    assert remote["metadata"]["source_uri"] == url


# ---------------------------------------------------------------- resources


@dsl.pipeline
def resourced() -> int:
    return number(x=1).set_cpu_request("250m").set_memory_request("64Mi").output


def test_cpu_memory_requests_reach_the_executor(executor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flowyard.pipelines import PipelineRun, from_function

    seen: list[object] = []
    original = executor.launch

    def spy(spec):  # type: ignore[no-untyped-def]
        seen.append(spec.resources)
        return original(spec)

    executor.launch = spy
    snap = PipelineRun(from_function(resourced), executor=executor).run_until_done(60)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert seen[0].cpu == 0.25 and seen[0].memory == 64 * 1024 * 1024

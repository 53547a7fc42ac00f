"""KFP error bodies, filters, sorting and page tokens over raw HTTP (as KFP's server answers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.kfp_api import pipelines

ROOT = "/apis/v2beta1"


def _error(resp: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert set(body) == {"error", "code", "message", "details"}
    assert body["code"] == code and body["error"] == body["message"]
    return body


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = pipelines.compile_to(pipelines.adder, tmp_path_factory.mktemp("p") / "a.yaml")
    doc: dict[str, Any] = yaml.safe_load(Path(path).read_text())
    return doc


def _run(http: httpx.Client, spec: dict[str, Any], name: str, exp: str | None = None) -> str:
    body: dict[str, Any] = {"display_name": name, "pipeline_spec": spec}
    if exp:
        body["experiment_id"] = exp
    resp = http.post(f"{ROOT}/runs", json=body)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["run_id"])


def test_errors_have_kfp_shape(http: httpx.Client, spec: dict[str, Any]) -> None:
    files = {"uploadfile": ("p.yaml", b"a: [unclosed", "application/x-yaml")}
    _error(http.post(f"{ROOT}/pipelines/upload?name=bad", files=files), 400, 3)
    broken = {**spec, "root": {"dag": {"tasks": {"t": {"componentRef": {"name": "nope"}}}}}}
    _error(http.post(f"{ROOT}/runs", json={"display_name": "x", "pipeline_spec": broken}), 400, 3)
    _error(http.get(f"{ROOT}/runs/00000000-0000-0000-0000-000000000000"), 404, 5)
    _error(http.get(f"{ROOT}/runs", params={"filter": "{not json"}), 400, 3)
    bad_key = json.dumps(
        {"predicates": [{"key": "color", "operation": "EQUALS", "string_value": "red"}]}
    )
    _error(http.get(f"{ROOT}/runs", params={"filter": bad_key}), 400, 3)
    _error(http.get(f"{ROOT}/runs", params={"sort_by": "color"}), 400, 3)
    _error(http.get(f"{ROOT}/runs", params={"page_token": "garbage"}), 400, 3)
    _error(
        http.post(f"{ROOT}/runs", content=b"{", headers={"content-type": "application/json"}),
        400,
        3,
    )
    http.post(f"{ROOT}/pipelines", json={"display_name": "dup"}).raise_for_status()
    _error(http.post(f"{ROOT}/pipelines", json={"display_name": "dup"}), 409, 6)
    params = {
        "display_name": "y",
        "pipeline_spec": spec,
        "runtime_config": {"parameters": {"x": "not-an-int"}},
    }
    _error(http.post(f"{ROOT}/runs", json=params), 400, 3)


def test_filters_sort_and_stable_pages(http: httpx.Client, spec: dict[str, Any]) -> None:
    exp = http.post(f"{ROOT}/experiments", json={"display_name": "filters"}).json()
    ids = [_run(http, spec, f"f-run-{i}", exp["experiment_id"]) for i in range(5)]
    _run(http, spec, "other-run")

    def names(**params: Any) -> list[str]:
        resp = http.get(f"{ROOT}/runs", params=params)
        assert resp.status_code == 200, resp.text
        return [r["display_name"] for r in resp.json().get("runs", [])]

    def flt(*preds: dict[str, Any]) -> str:
        return json.dumps({"predicates": list(preds)})

    eq_exp = {"key": "experiment_id", "operation": "EQUALS", "string_value": exp["experiment_id"]}
    assert names(filter=flt(eq_exp), sort_by="name desc", page_size=50) == [
        f"f-run-{i}" for i in (4, 3, 2, 1, 0)
    ]
    assert names(
        filter=flt({"key": "name", "operation": "IS_SUBSTRING", "stringValue": "run-3"})
    ) == ["f-run-3"]
    assert "other-run" not in names(
        filter=flt(eq_exp, {"key": "name", "operation": "NOT_EQUALS", "string_value": "f-run-0"})
    )
    assert names(
        filter=flt(
            {"key": "name", "operation": "IN", "string_values": {"values": ["f-run-1", "f-run-2"]}}
        ),
        sort_by="created_at",
    ) == ["f-run-1", "f-run-2"]
    first = http.get(f"{ROOT}/runs/{ids[2]}").json()["created_at"]
    later = names(
        filter=flt(
            eq_exp, {"key": "created_at", "operation": "GREATER_THAN", "timestamp_value": first}
        ),
        sort_by="created_at",
    )
    assert later == ["f-run-3", "f-run-4"]
    earlier = names(
        filter=flt(
            eq_exp, {"key": "created_at", "operation": "LESS_THAN", "timestamp_value": first}
        ),
        sort_by="created_at",
    )
    assert earlier == ["f-run-0", "f-run-1"]
    states = names(
        filter=flt(
            eq_exp,
            {
                "key": "state",
                "operation": "IN",
                "string_values": {"values": ["PENDING", "RUNNING", "SUCCEEDED"]},
            },
        ),
        page_size=50,
    )
    assert len(states) == 5

    # Pages continue after the last item served, whatever is inserted meanwhile.
    page1 = http.get(
        f"{ROOT}/runs", params={"filter": flt(eq_exp), "page_size": 2, "sort_by": "name"}
    ).json()
    assert page1["total_size"] == 5 and page1["next_page_token"]
    _run(http, spec, "f-run-0a", exp["experiment_id"])  # sorts before the next page
    seen = [r["display_name"] for r in page1["runs"]]
    token = page1["next_page_token"]
    while token:
        page = http.get(f"{ROOT}/runs", params={"page_token": token, "page_size": 2}).json()
        seen += [r["display_name"] for r in page.get("runs", [])]
        token = page.get("next_page_token")
    assert seen == ["f-run-0", "f-run-1", "f-run-2", "f-run-3", "f-run-4"]


def test_pipeline_create_from_url_and_download(
    http: httpx.Client, spec: dict[str, Any], tmp_path: Path
) -> None:
    import threading
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *_: Any) -> None:
            pass

    web = HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{web.server_address[1]}/p.yaml"
        resp = http.post(
            f"{ROOT}/pipelines/create",
            json={
                "pipeline": {"display_name": "from url"},
                "pipeline_version": {"display_name": "v1", "package_url": {"pipeline_url": url}},
            },
        )
    finally:
        web.shutdown()
        web.server_close()
        thread.join(5)
    assert resp.status_code == 200, resp.text
    pid = resp.json()["pipeline_id"]
    by_name = http.get(f"{ROOT}/pipelines/names/from url").json()
    assert by_name["pipeline_id"] == pid
    versions = http.get(f"{ROOT}/pipelines/{pid}/versions").json()["pipeline_versions"]
    assert versions[0]["package_url"] == {"pipeline_url": url}
    vid = versions[0]["pipeline_version_id"]
    text = http.get(f"{ROOT}/pipelines/{pid}/versions/{vid}:download").text
    assert yaml.safe_load(text)["pipelineInfo"]["name"] == "adder"

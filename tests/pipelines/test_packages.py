"""``packages_to_install`` goes through a per-environment cache: installed once, shared by steps,
never a venv per step. Uses a wheel built here, so no network is needed."""

import base64
import hashlib
import zipfile
from pathlib import Path

from kfp import dsl

from flowyard import config

from .conftest import RunFn, log_of, task


def _build_wheel(directory: Path) -> Path:
    name, version = "flowyard_tinypkg", "1.0"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": "VALUE = 'tiny-ok'\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ),
        f"{name}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def test_packages_to_install_use_a_shared_cache(run_pipeline: RunFn, tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)

    @dsl.component(base_image="python:3.11", packages_to_install=[str(wheel)])
    def use_pkg(tag: str) -> str:
        import flowyard_tinypkg

        return f"{tag}:{flowyard_tinypkg.VALUE}"

    @dsl.pipeline
    def with_packages() -> None:
        use_pkg(tag="a")
        use_pkg(tag="b")

    snap = run_pipeline(with_packages, timeout=300)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert task(snap, "use-pkg")["outputs"]["parameters"]["Output"] == "a:tiny-ok"
    assert task(snap, "use-pkg-2")["outputs"]["parameters"]["Output"] == "b:tiny-ok"
    envs = [p for p in (config.home() / "pipelines" / "envs").iterdir() if p.is_dir()]
    assert len(envs) == 1 and (envs[0] / ".flowyard-complete").exists()
    installs = log_of(snap, "use-pkg").count("installing") + log_of(snap, "use-pkg-2").count(
        "installing"
    )
    assert installs == 1
    again = run_pipeline(with_packages, enable_caching=False)
    assert "installing" not in log_of(again, "use-pkg")

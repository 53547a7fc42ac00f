"""storageUri resolution against real servers: local, file://, pvc://, http(s) archives served
by a local http.server, and s3:// against a real moto S3 server on loopback."""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard import config
from flowyard.errors import InvalidError, NotFoundError
from flowyard.serving import storage
from tests.serving.conftest import Server, free_port
from tests.support.s3 import moto_server, s3_client


def test_local_path_and_file_uri(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"x")
    assert storage.resolve(str(tmp_path)) == tmp_path
    assert storage.resolve(f"file://{tmp_path}") == tmp_path
    with pytest.raises(NotFoundError, match="does not exist"):
        storage.resolve(f"file://{tmp_path}/missing")


def test_pvc_maps_to_a_named_volume() -> None:
    volume = config.home() / "volumes" / "models" / "iris"
    volume.mkdir(parents=True)
    assert storage.resolve("pvc://models/iris") == volume.resolve()
    with pytest.raises(NotFoundError):
        storage.resolve("pvc://models/other")
    with pytest.raises(InvalidError, match="escapes"):
        storage.resolve("pvc://models/../../etc")
    with pytest.raises(InvalidError, match="volume name"):
        storage.resolve("pvc:///iris")


def test_bad_uris_are_clear_errors() -> None:
    with pytest.raises(InvalidError, match=r"gs:// is not supported"):
        storage.resolve("gs://bucket/model")
    with pytest.raises(InvalidError, match="empty"):
        storage.resolve("")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []

    class Handler(_Quiet):
        def do_GET(self) -> None:
            hits.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, hits
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_http_tar_gz_is_unpacked_and_cached(http_root: tuple[str, Path, list[str]]) -> None:
    url, root, hits = http_root
    with tarfile.open(root / "model.tar.gz", "w:gz") as archive:
        data = b"weights"
        info = tarfile.TarInfo("iris/model.joblib")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    local = storage.resolve(f"{url}/model.tar.gz")
    assert (local / "iris" / "model.joblib").read_bytes() == b"weights"
    assert not (local / "model.tar.gz").exists()
    assert storage.resolve(f"{url}/model.tar.gz") == local
    assert hits == ["/model.tar.gz"]  # the second resolve came from the cache
    assert local.parent == config.home() / "models-cache"


def test_http_zip_and_plain_file(http_root: tuple[str, Path, list[str]]) -> None:
    url, root, _ = http_root
    with zipfile.ZipFile(root / "bundle.zip", "w") as archive:
        archive.writestr("model.onnx", b"onnx-bytes")
    assert (storage.resolve(f"{url}/bundle.zip") / "model.onnx").read_bytes() == b"onnx-bytes"
    (root / "model.bst").write_bytes(b"bst")
    assert (storage.resolve(f"{url}/model.bst") / "model.bst").read_bytes() == b"bst"
    with pytest.raises(NotFoundError, match="404"):
        storage.resolve(f"{url}/missing.tar.gz")
    (root / "broken.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(InvalidError, match="not a readable archive"):
        storage.resolve(f"{url}/broken.tar.gz")
    assert not [
        p for p in (config.home() / "models-cache").iterdir() if p.name.startswith(".partial-")
    ]


def test_http_unreachable_is_a_clear_error() -> None:
    with pytest.raises(InvalidError, match="download failed"):
        storage.resolve(f"http://127.0.0.1:{free_port()}/model.tar.gz")


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    with moto_server(tmp_path_factory.mktemp("moto")) as env:
        yield env


def _upload(env: dict[str, str], bucket: str, files: dict[str, bytes]) -> None:
    s3 = s3_client(env)
    s3.create_bucket(Bucket=bucket)
    for key, data in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)


def test_s3_prefix_is_downloaded(moto_s3: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in moto_s3.items():
        monkeypatch.setenv(key, value)
    _upload(moto_s3, "models", {"iris/model.joblib": b"joblib", "iris/extra/meta.txt": b"m"})
    local = storage.resolve("s3://models/iris")
    assert (local / "model.joblib").read_bytes() == b"joblib"
    assert (local / "extra" / "meta.txt").read_bytes() == b"m"
    with pytest.raises(NotFoundError, match="no such object"):
        storage.resolve("s3://models/absent")


def test_server_loads_a_model_from_s3(
    moto_s3: dict[str, str], start_server: Any, iris_dir: Path, tmp_path: Path
) -> None:
    _upload(moto_s3, "served", {"iris/model.joblib": (iris_dir / "model.joblib").read_bytes()})
    home = tmp_path / "home"
    home.mkdir()
    server: Server = start_server(
        ["--model-name", "iris", "--model-dir", "s3://served/iris", "--runtime", "sklearn"],
        home=home,
        env=moto_s3,
    )
    server.wait_loaded()
    assert server.client.get("/flowyard/status").json()["state"] == "Loaded", server.output()
    resp = server.client.post("/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert resp.json() == {"predictions": [0]}
    assert list((home / "models-cache").iterdir())

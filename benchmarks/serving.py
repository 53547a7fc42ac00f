"""Model serving: flowyard's model server against KServe's own Python ModelServer (issue 8).

Same iris LogisticRegression, same 1-row payloads, one server process each, ``wrk`` closed loop
(a Lua script for the POST) at several concurrencies, V1 and V2 REST. For each cell: req/s,
p50/p99 latency, and server CPU microseconds per request (psutil ``cpu_times`` of the server
process before/after the run divided by the requests wrk completed). Then the batcher's
throughput at the highest concurrency. Prints one table with flowyard/KServe ratios.

KServe runs from its own virtualenv (kserve pins an older psutil), created on first use::

    python benchmarks/serving.py                      # 5 s per cell, c = 1, 8, 32
    python benchmarks/serving.py --duration 10 --concurrency 1,8,32,64

Needs ``wrk`` (``scripts/install_wrk.sh``) and the ``serving`` extra (scikit-learn). KServe's
server is started with its latency logging off and its uvicorn access log disabled, bound to
127.0.0.1; flowyard's server runs with its defaults (no access log).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

KSERVE_VERSION = "0.21.0"
ROW = [6.8, 2.8, 4.8, 1.4]
PAYLOADS = {
    "v1": ("/v1/models/iris:predict", {"instances": [ROW]}),
    "v2": (
        "/v2/models/iris/infer",
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": ROW}]},
    ),
}

KSERVE_LAUNCHER = textwrap.dedent(
    """
    import logging, sys
    import joblib, numpy as np, uvicorn
    import kserve
    from kserve import InferRequest, Model, ModelServer
    from kserve.utils.utils import get_predict_input, get_predict_response

    _config_init = uvicorn.Config.__init__
    def _loopback(self, *args, **kwargs):  # KServe binds 0.0.0.0; keep the benchmark on loopback
        kwargs["host"] = "127.0.0.1"
        _config_init(self, *args, **kwargs)
    uvicorn.Config.__init__ = _loopback

    class Iris(Model):  # what KServe's sklearnserver does for predict(), V1 and V2
        def __init__(self, name, path):
            super().__init__(name)
            self.path = path
            self.load()
        def load(self):
            self._model = joblib.load(self.path)
            self.ready = True
            return True
        def predict(self, payload, headers=None, response_headers=None):
            instances = get_predict_input(payload)
            result = self._model.predict(instances)
            return get_predict_response(payload, result, self.name)

    path, port = sys.argv[1], int(sys.argv[2])
    sys.argv = sys.argv[:1]
    model = Iris("iris", path)
    server = ModelServer(http_port=port, enable_grpc=False, workers=1,
                         enable_latency_logging=False)
    logging.getLogger("uvicorn.access").disabled = True
    server.start([model])
    """
)


Key = tuple[str, int]


@dataclass
class Cell:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    requests: int
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kserve_python(venv: Path, sklearn_version: str) -> Path:
    """The KServe virtualenv's python, creating the venv (uv if present, else pip) once."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import kserve, sklearn; print(sklearn.__version__)"]
    if python.exists():
        done = subprocess.run(check, capture_output=True, text=True, timeout=120)
        if done.returncode == 0 and done.stdout.strip() == sklearn_version:
            return python
    pins = [f"kserve=={KSERVE_VERSION}", f"scikit-learn=={sklearn_version}", "joblib"]
    print(f"creating {venv} with {' '.join(pins)} ...", file=sys.stderr)
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", str(venv), "--python", sys.executable], check=True, timeout=300)
        subprocess.run(
            [uv, "pip", "install", "--python", str(python), *pins], check=True, timeout=900
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", *pins], check=True, timeout=900)
    subprocess.run(check, check=True, timeout=120)
    return python


def train_iris(folder: Path) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = folder / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), path)
    return path


class ServerProcess:
    def __init__(
        self, name: str, argv: list[str], port: int, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        self.ps = psutil.Process(self.proc.pid)
        self.log = log

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready in {timeout}s: {self.log.read_text()[-3000:]}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process and any children it started."""
        procs = [self.ps, *self.ps.children(recursive=True)]
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


def lua_script(folder: Path, protocol: str) -> Path:
    _, body = PAYLOADS[protocol]
    script = folder / f"{protocol}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(server: ServerProcess, protocol: str, script: Path, conc: int, duration: float) -> Cell:
    url = server.url + PAYLOADS[protocol][0]
    threads = "1" if conc < 4 else "2"
    base = ["wrk", "-t", threads, "-c", str(conc), "-s", str(script), "--latency", url]
    subprocess.run([*base[:-1], "-d", "1s", url], capture_output=True, timeout=60, check=True)
    cpu0 = server.cpu_seconds()
    out = subprocess.run(
        [*base[:-1], "-d", f"{duration:g}s", url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    cpu = server.cpu_seconds() - cpu0
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return Cell(rps, p50, p99, cpu * 1e6 / max(requests, 1), requests, errors)


def check_answers(server: ServerProcess) -> None:
    """Both servers must give the same, correct prediction before they are timed."""
    for protocol, (path, body) in PAYLOADS.items():
        resp = httpx.post(server.url + path, json=body, timeout=10)
        resp.raise_for_status()
        data = resp.json()
        value = data["predictions"][0] if protocol == "v1" else data["outputs"][0]["data"][0]
        if value != 1:
            raise AssertionError(f"{server.name} {protocol} predicted {value}, expected 1")


def measure(
    servers: list[ServerProcess],
    scripts: dict[str, Path],
    concs: list[int],
    duration: float,
    batcher: ServerProcess | None,
) -> dict[str, dict[Key, Cell]]:
    """Every cell runs the servers back to back, so load from elsewhere on the machine hits
    them alike rather than whichever server happened to run during a busy minute."""
    results: dict[str, dict[Key, Cell]] = {s.name: {} for s in servers}
    if batcher is not None:
        results[batcher.name] = {}
    for protocol, script in scripts.items():
        for conc in concs:
            todo = list(servers)
            if batcher is not None and conc == max(concs):
                todo.append(batcher)
            for server in todo:
                cell = run_wrk(server, protocol, script, conc, duration)
                results[server.name][(protocol, conc)] = cell
                print(
                    f"  {server.name:16} {protocol} c={conc:<3} {cell.rps:9.0f} req/s "
                    f"p50 {cell.p50_ms:7.2f} ms p99 {cell.p99_ms:7.2f} ms "
                    f"{cell.cpu_us:7.0f} us CPU/req errors {cell.errors}",
                    file=sys.stderr,
                )
    return results


def start_flowyard(
    model_dir: Path, work: Path, name: str, extra: list[str], env: dict[str, str] | None = None
) -> ServerProcess:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "flowyard.serving.server",
        "--model-name",
        "iris",
        "--model-dir",
        str(model_dir),
        "--runtime",
        "sklearn",
        "--http-port",
        str(port),
        *extra,
    ]
    return ServerProcess(name, argv, port, work / f"{name}.log", env)


class IsvcStack:
    """``flowyard up`` (own FLOWYARD_HOME) serving the iris model as an sklearn InferenceService;
    ``url`` is ``status.url`` (the router), CPU is the control plane plus every replica process
    under that home (executor shims included), i.e. all the CPU a request through the
    InferenceService URL costs."""

    def __init__(self, name: str, model_dir: Path, work: Path, env: dict[str, str]) -> None:
        self.name = name
        self.home = work / f"{name}-home"
        port = free_port()
        self.api = f"http://127.0.0.1:{port}"
        self._env = {**os.environ, **env, "FLOWYARD_HOME": str(self.home), "FLOWYARD_URL": self.api}
        self._env.pop("FLOWYARD_TOKEN", None)
        self.log = work / f"{name}.log"
        self._log = self.log.open("wb")
        argv = [sys.executable, "-m", "flowyard.cli.main", "up", "--port", str(port)]
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=self._env
        )
        self.ps = psutil.Process(self.proc.pid)
        self.model_dir = model_dir
        self.url = ""

    def wait_ready(self, timeout: float = 120.0) -> None:
        from flowyard.client import Client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.api + "/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        token = json.loads((self.home / "credentials").read_text())["token"]
        isvc = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": "default"},
            "spec": {
                "predictor": {
                    "model": {"modelFormat": {"name": "sklearn"}, "storageUri": str(self.model_dir)}
                }
            },
        }
        with Client(self.api, token) as client:
            client.apply(isvc)
            while time.monotonic() < deadline:
                status = client.get("InferenceService", "iris", "default").get("status") or {}
                ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
                if ready and ready[0]["status"] == "True":
                    self.url = status["url"]
                    break
                time.sleep(0.2)
            else:
                raise TimeoutError(f"{self.name}: InferenceService not Ready: {status}")
        httpx.get(self.url + "/v2/health/ready", timeout=5).raise_for_status()

    def _processes(self) -> list[psutil.Process]:
        procs = [self.ps, *self.ps.children(recursive=True)]
        marker = str(self.home)
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if proc not in procs and marker in " ".join(proc.info["cmdline"] or []):
                    procs.append(proc)
                    procs.extend(proc.children(recursive=True))
        return procs

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in set(self._processes()):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def stop(self) -> None:
        replicas = [p for p in self._processes() if p.pid != self.proc.pid]
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        for proc in replicas:  # the control plane leaves replicas up for adoption on restart
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        psutil.wait_procs(replicas, timeout=10)
        self._log.close()


def print_table(
    ks: dict[Key, Cell], fy: dict[Key, Cell], batch: dict[Key, Cell], args: argparse.Namespace
) -> None:
    print(
        f"\nflowyard vs KServe {KSERVE_VERSION} ModelServer - iris LogisticRegression, 1-row "
        f"payloads, wrk {args.duration:g} s per cell, one server process each\n"
    )
    head = (
        "| proto | c | KServe req/s | flowyard req/s | req/s ratio | KServe p50/p99 ms | "
        "flowyard p50/p99 ms | KServe CPU us/req | flowyard CPU us/req | CPU ratio |"
    )
    print(head)
    print("|" + "---|" * 10)
    for (protocol, conc), f in fy.items():
        k = ks.get((protocol, conc))
        if k is None:
            print(
                f"| {protocol} | {conc} | - | {f.rps:.0f} | - | - | {f.p50_ms:.2f}/"
                f"{f.p99_ms:.2f} | - | {f.cpu_us:.0f} | - |"
            )
            continue
        print(
            f"| {protocol} | {conc} | {k.rps:.0f} | {f.rps:.0f} | {f.rps / k.rps:.2f}x | "
            f"{k.p50_ms:.2f}/{k.p99_ms:.2f} | {f.p50_ms:.2f}/{f.p99_ms:.2f} | "
            f"{k.cpu_us:.0f} | {f.cpu_us:.0f} | {f.cpu_us / k.cpu_us:.2f}x |"
        )
    if batch:
        print(
            f"\nbatcher (--batch-max-size {args.batch_size} --batch-max-latency-ms "
            f"{args.batch_latency_ms:g}):\n"
        )
        print(
            "| proto | c | flowyard+batcher req/s | vs flowyard | vs KServe | p50/p99 ms | "
            "CPU us/req |"
        )
        print("|" + "---|" * 7)
        for (protocol, conc), b in batch.items():
            f = fy[(protocol, conc)]
            k = ks.get((protocol, conc))
            vs_k = f"{b.rps / k.rps:.2f}x" if k else "-"
            print(
                f"| {protocol} | {conc} | {b.rps:.0f} | {b.rps / f.rps:.2f}x | {vs_k} | "
                f"{b.p50_ms:.2f}/{b.p99_ms:.2f} | {b.cpu_us:.0f} |"
            )
    errors = sum(c.errors for d in (ks, fy, batch) for c in d.values())
    print(f"\nnon-2xx or socket errors across all runs: {errors}")


def print_routed(ks: dict[Key, Cell], fy: dict[Key, Cell], routed: dict[Key, Cell]) -> None:
    load = os.getloadavg()
    print(
        "\nthrough the InferenceService URL (flowyard up + sklearn InferenceService, wrk against "
        "status.url; CPU = control plane incl. router + replica) vs the model server directly; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}:\n"
    )
    print(
        "| proto | c | direct req/s | via isvc req/s | via/direct | via isvc p50/p99 ms | "
        "direct CPU us/req | via isvc CPU us/req | KServe req/s | via isvc / KServe req/s | "
        "via isvc / KServe CPU |"
    )
    print("|" + "---|" * 11)
    for (protocol, conc), r in routed.items():
        f = fy[(protocol, conc)]
        k = ks.get((protocol, conc))
        k_rps = f"{k.rps:.0f}" if k else "-"
        vs_rps = f"{r.rps / k.rps:.2f}x" if k else "-"
        vs_cpu = f"{r.cpu_us / k.cpu_us:.2f}x" if k else "-"
        print(
            f"| {protocol} | {conc} | {f.rps:.0f} | {r.rps:.0f} | {r.rps / f.rps:.2f}x | "
            f"{r.p50_ms:.2f}/{r.p99_ms:.2f} | {f.cpu_us:.0f} | {r.cpu_us:.0f} | {k_rps} | "
            f"{vs_rps} | {vs_cpu} |"
        )


def print_exact(ks: dict[Key, Cell], exact: dict[Key, Cell]) -> None:
    print(
        "\nflowyard with the sklearn fast path off (FLOWYARD_SKLEARN_FAST_PATH=0: every request "
        "goes through scikit-learn's own predict(), as in KServe):\n"
    )
    print("| proto | c | req/s | vs KServe | p50/p99 ms | CPU us/req | CPU vs KServe |")
    print("|" + "---|" * 7)
    for (protocol, conc), e in exact.items():
        k = ks.get((protocol, conc))
        rps = f"{e.rps / k.rps:.2f}x" if k else "-"
        cpu = f"{e.cpu_us / k.cpu_us:.2f}x" if k else "-"
        print(
            f"| {protocol} | {conc} | {e.rps:.0f} | {rps} | {e.p50_ms:.2f}/{e.p99_ms:.2f} | "
            f"{e.cpu_us:.0f} | {cpu} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--kserve-venv", default=str(Path(tempfile.gettempdir()) / "flowyard-bench-kserve")
    )
    parser.add_argument("--skip-kserve", action="store_true")
    parser.add_argument("--skip-batcher", action="store_true")
    parser.add_argument(
        "--skip-exact", action="store_true", help="skip flowyard with the sklearn fast path off"
    )
    parser.add_argument(
        "--skip-router", action="store_true", help="skip flowyard via the InferenceService URL"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batch-latency-ms", type=float, default=2.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: run scripts/install_wrk.sh", file=sys.stderr)
        return 2
    import sklearn

    concs = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="flowyard-bench-serving-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("FLOWYARD_HOME", str(work / "home"))
        model = train_iris(work)
        scripts = {p: lua_script(work, p) for p in PAYLOADS}
        servers: list[ServerProcess] = []
        batcher: ServerProcess | None = None
        try:
            if not args.skip_kserve:
                python = kserve_python(Path(args.kserve_venv), sklearn.__version__)
                launcher = work / "kserve_iris.py"
                launcher.write_text(KSERVE_LAUNCHER)
                port = free_port()
                servers.append(
                    ServerProcess(
                        "kserve",
                        [str(python), str(launcher), str(model), str(port)],
                        port,
                        work / "kserve.log",
                    )
                )
            servers.append(start_flowyard(work, work, "flowyard", []))
            if not args.skip_router:
                servers.append(IsvcStack("flowyard-isvc", work, work, {}))  # type: ignore[arg-type]
            if not args.skip_exact:
                servers.append(
                    start_flowyard(
                        work, work, "flowyard-exact", [], {"FLOWYARD_SKLEARN_FAST_PATH": "0"}
                    )
                )
            batch_args = [
                "--batch-max-size",
                str(args.batch_size),
                "--batch-max-latency-ms",
                str(args.batch_latency_ms),
            ]
            if not args.skip_batcher:
                batcher = start_flowyard(work, work, "flowyard-batcher", batch_args)
            for ready in [*servers, *([batcher] if batcher else [])]:
                ready.wait_ready()
                check_answers(ready)
            results = measure(servers, scripts, concs, args.duration, batcher)
        finally:
            for started in [*servers, batcher]:
                if started is not None:
                    started.stop()
        ks, fy, batch, exact, routed = (
            results.get(n, {})
            for n in ("kserve", "flowyard", "flowyard-batcher", "flowyard-exact", "flowyard-isvc")
        )
        print_table(ks, fy, batch, args)
        if routed:
            print_routed(ks, fy, routed)
        if exact:
            print_exact(ks, exact)
    return 0


if __name__ == "__main__":
    sys.exit(main())

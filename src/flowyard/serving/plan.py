"""What runs for one component of an InferenceService: a :class:`dict` "plan" (argv template,
env, readiness probe, router settings), plain JSON so it can be kept in ``status`` per revision.

Runtime containers map onto host commands: ``python`` is this interpreter, ``{{.Name}}`` the
InferenceService name, ``/mnt/models`` the storageUri (mapped by ``FLOWYARD_STORAGE_URI_MAP``),
and ``8080`` in ``--http-port``/``--http_port`` the replica's own free port. Every replica gets
``PORT``; ``$(VAR)`` in command/args expands from the replica's env, as Kubernetes does.
A transformer or explainer (``containers[0]``) gets KServe's ``--model_name``,
``--predictor_host`` and ``--http_port`` arguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from typing import Any

from flowyard.serving.selection import RuntimeChoice, model_ref, select_runtime

STORAGE_MAP_ENV = "FLOWYARD_STORAGE_URI_MAP"
_PASS_ENV = ("FLOWYARD_HOME", "S3_ENDPOINT", "S3_USE_HTTPS", "FLOWYARD_SKLEARN_FAST_PATH")
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def map_storage_uri(uri: str, mapping: str | None = None) -> str:
    """Apply ``FLOWYARD_STORAGE_URI_MAP`` (``PREFIX=TARGET;PREFIX=TARGET``): the longest matching
    prefix of ``uri`` is replaced by its target (e.g. ``gs://bucket/models=/srv/models``), so
    samples that name remote buckets run against local copies."""
    mapping = os.environ.get(STORAGE_MAP_ENV, "") if mapping is None else mapping
    pairs = [p.split("=", 1) for p in mapping.split(";") if "=" in p]
    best = max((p for p in pairs if uri.startswith(p[0])), key=lambda p: len(p[0]), default=None)
    return best[1] + uri[len(best[0]) :] if best else uri


def expand(value: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def passed_env() -> dict[str, str]:
    """Control-plane variables every replica gets at launch (kept out of the stored plan, so
    credentials never land in ``status``)."""
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    return env


def _base_env(container: dict[str, Any] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in (container or {}).get("env") or []:
        if "value" in item:
            env[str(item["name"])] = str(item["value"])
    return env


def _probe(container: dict[str, Any] | None) -> str:
    http = ((container or {}).get("readinessProbe") or {}).get("httpGet") or {}
    return f"http:{http.get('path') or '/'}" if http else "tcp"


def _runtime_argv(
    choice: RuntimeChoice, name: str, storage_uri: str, model: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    container = (choice.spec.get("containers") or [{}])[0]
    words = [*(container.get("command") or []), *(container.get("args") or [])]
    argv = []
    for word in words:
        word = str(word).replace("{{.Name}}", name).replace("/mnt/models", storage_uri)
        word = re.sub(r"^(--http[-_]port[= ])8080$", r"\g<1>$(PORT)", word)
        word = re.sub(r"^(--grpc[-_]port[= ])8081$", r"\g<1>$(GRPC_PORT)", word)
        argv.append(word)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    argv += [str(a) for a in model.get("args") or []]
    return argv, container


def predictor_plan(isvc: dict[str, Any], runtimes: tuple[list[Any], list[Any]]) -> dict[str, Any]:
    """The predictor's plan; raises NoSupportingRuntime when no runtime fits."""
    name = isvc["metadata"]["name"]
    predictor = isvc["spec"]["predictor"]
    ref = model_ref(predictor)
    if ref is None:  # predictor.containers[]: a custom server run on the host
        container = predictor["containers"][0]
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        return _finish({"argv": argv, "env": _base_env(container), "probe": _probe(container)})
    choice = select_runtime(ref, *runtimes)
    uri = map_storage_uri(str(ref.spec.get("storageUri") or ""))
    argv, container = _runtime_argv(choice, name, uri, ref.spec)
    flowyard = "flowyard.serving.server" in argv
    if flowyard:
        argv += ["--protocol", "v2" if ref.protocol.endswith("v2") else "v1"]
        if not any(str(a).startswith(("--grpc-port", "--grpc_port")) for a in argv):
            argv.append("--grpc-port=$(GRPC_PORT)")  # V2 gRPC through the InferenceService
        batcher = predictor.get("batcher")
        if isinstance(batcher, dict):
            argv += [
                f"--batch-max-size={int(batcher.get('maxBatchSize') or 32)}",
                f"--batch-max-latency-ms={float(batcher.get('maxLatency') or 500)}",
            ]
        if predictor.get("containerConcurrency"):
            argv.append(f"--container-concurrency={int(predictor['containerConcurrency'])}")
    env = _base_env(container)
    env.update({str(e["name"]): str(e["value"]) for e in ref.spec.get("env") or [] if "value" in e})
    plan = {
        "argv": argv,
        "env": env,
        "probe": "flowyard" if flowyard else _probe(container),
        "runtime": choice.name,
        "storageUri": uri,
    }
    return _finish(plan)


def sidecar_plan(isvc: dict[str, Any], component: str, predictor_host: str) -> dict[str, Any]:
    """A transformer or explainer: ``containers[0]`` run on the host, pointed at the predictor."""
    container = isvc["spec"][component]["containers"][0]
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    argv += [
        f"--model_name={isvc['metadata']['name']}",
        f"--predictor_host={predictor_host}",
        "--http_port=$(PORT)",
    ]
    env = _base_env(container)
    env["PREDICTOR_HOST"] = predictor_host
    return _finish({"argv": argv, "env": env, "probe": _probe(container)})


def _finish(plan: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(plan, sort_keys=True).encode()
    plan["hash"] = hashlib.sha256(body).hexdigest()[:16]
    return plan

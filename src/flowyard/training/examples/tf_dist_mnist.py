"""Stand-in for the upstream TensorFlow example images (``tf-dist-mnist-test``,
``tf-mnist-with-summaries``): parameter-server training driven by ``TF_CONFIG``, without
TensorFlow.

It reads ``TF_CONFIG`` exactly as ``tf.distribute`` does (``cluster`` with ``chief``/``master``,
``ps``, ``worker``, ``evaluator`` address lists and this process's ``task`` type and index) and
plays its role for real over TCP sockets on the addresses given there:

* a **ps** task listens on its own cluster address and holds a shard of the parameters
  (parameter ``j`` lives on ps ``j % len(ps)``); it serves JSON-line requests (``pull`` its shard,
  ``push`` a gradient that it applies with SGD, ``done``, ``status``) and exits 0 once every
  trainer said ``done`` (1 if that does not happen within ``--ps-timeout`` seconds);
* a **trainer** (chief, master or worker) connects to every ps, and for ``--train_steps`` steps
  pulls the parameters, computes the gradient of a linear model's squared loss on a minibatch of
  its own synthetic data shard and pushes it (asynchronous between-graph training, as the
  upstream example); then it says ``done``. The lead trainer (chief or master; without one,
  worker 0) instead waits until every other trainer is done, evaluates the final parameters on
  held-out data, says ``done`` last and exits 1 unless the loss went down, so a job whose
  exchange is broken fails instead of passing;
* an **evaluator** pulls the parameters once, prints their loss and exits;
* without ``TF_CONFIG`` or without ps tasks the process trains alone (``tfjob_simple``'s workers).

The data is synthetic and deterministic (the machine has no network to fetch MNIST): features
drawn from a seeded generator, targets from fixed true weights plus noise. Upstream's flags
(``--train_steps``, ``--batch_size``, ``--learning_rate``) are accepted; unknown flags ignored.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import socketserver
import sys
import threading
import time
from typing import Any

FEATURES = 8
CONNECT_SECONDS = 120.0
TRAINER_TYPES = ("chief", "master", "worker")


def true_weights() -> list[float]:
    gen = random.Random(1234)
    return [gen.uniform(-2.0, 2.0) for _ in range(FEATURES)]


def dataset(seed: int, samples: int) -> list[tuple[list[float], float]]:
    gen, weights = random.Random(seed), true_weights()
    rows = []
    for _ in range(samples):
        x = [gen.gauss(0.0, 1.0) for _ in range(FEATURES)]
        rows.append((x, sum(a * b for a, b in zip(weights, x, strict=True)) + gen.gauss(0, 0.05)))
    return rows


def loss(weights: list[float], rows: list[tuple[list[float], float]]) -> float:
    errors = [sum(a * b for a, b in zip(weights, x, strict=True)) - y for x, y in rows]
    return sum(e * e for e in errors) / len(rows)


def gradient(weights: list[float], rows: list[tuple[list[float], float]]) -> list[float]:
    grad = [0.0] * FEATURES
    for x, y in rows:
        err = sum(a * b for a, b in zip(weights, x, strict=True)) - y
        for j in range(FEATURES):
            grad[j] += 2.0 * err * x[j] / len(rows)
    return grad


# -- the parameter server ----------------------------------------------------------------------
class ParameterShard:
    """Parameters ``j`` with ``j % num_ps == index``, SGD updates and who sent them."""

    def __init__(self, index: int, num_ps: int, trainers: int, lr: float) -> None:
        self.values = {j: 0.0 for j in range(FEATURES) if j % num_ps == index}
        self.trainers, self.lr = trainers, lr
        self.updates: dict[str, int] = {}
        self.done: set[str] = set()
        self.lock = threading.Lock()
        self.all_done = threading.Event()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            op, task = request.get("op"), str(request.get("task"))
            if op == "push":
                for j, g in request["grad"].items():
                    self.values[int(j)] -= self.lr * float(g)
                self.updates[task] = self.updates.get(task, 0) + 1
            elif op == "done":
                self.done.add(task)
                if len(self.done) >= self.trainers:
                    self.all_done.set()
            elif op != "pull" and op != "status":
                return {"error": f"unknown op {op!r}"}
            return {"values": self.values, "done": len(self.done), "expected": self.trainers}


def serve_ps(address: str, shard: ParameterShard, timeout: float, name: str) -> int:
    host, port = address.rsplit(":", 1)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                reply = shard.handle(json.loads(line))
                self.wfile.write((json.dumps(reply) + "\n").encode())

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer((host, int(port)), Handler) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"{name}: serving {sorted(shard.values)} on {address}", flush=True)
        finished = shard.all_done.wait(timeout)
        server.shutdown()
    counts = ", ".join(f"{t}={n}" for t, n in sorted(shard.updates.items()))
    print(f"{name}: {sum(shard.updates.values())} updates ({counts})", flush=True)
    if not finished:
        print(f"{name}: trainers not done after {timeout}s: {sorted(shard.done)}", flush=True)
        return 1
    return 0


# -- trainers --------------------------------------------------------------------------------
class PSConnection:
    """One JSON-line connection to a ps task (retried until it listens)."""

    def __init__(self, address: str, task: str) -> None:
        host, port = address.rsplit(":", 1)
        end = time.monotonic() + CONNECT_SECONDS
        while True:
            try:
                self.sock = socket.create_connection((host, int(port)), timeout=30)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        self.file = self.sock.makefile("rwb")
        self.task = task

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        self.file.write((json.dumps({"op": op, "task": self.task, **fields}) + "\n").encode())
        self.file.flush()
        reply: dict[str, Any] = json.loads(self.file.readline())
        return reply


def pull(conns: list[PSConnection]) -> list[float]:
    weights = [0.0] * FEATURES
    for conn in conns:
        for j, value in conn.call("pull")["values"].items():
            weights[int(j)] = value
    return weights


def push(conns: list[PSConnection], grad: list[float]) -> None:
    for i, conn in enumerate(conns):
        conn.call("push", grad={j: grad[j] for j in range(FEATURES) if j % len(conns) == i})


def wait_for_others(conns: list[PSConnection], timeout: float) -> None:
    """Wait until every other trainer said ``done`` (the lead says it last)."""
    end = time.monotonic() + timeout
    for conn in conns:
        while (status := conn.call("status"))["done"] < status["expected"] - 1:
            if time.monotonic() > end:
                raise TimeoutError(f"the other trainers are not done after {timeout}s")
            time.sleep(0.05)


def is_lead(task: str, index: int, roles: set[str]) -> bool:
    """The chief (or master); without one, worker 0 (as TF picks the chief)."""
    if task in ("chief", "master"):
        return True
    return task == "worker" and index == 0 and not roles & {"chief", "master"}


def train(args: argparse.Namespace, task: str, index: int, ps: list[str], trainers: int) -> int:
    name = f"{task}:{index}"
    rows = dataset(seed=100 + index + (0 if task != "worker" else 50), samples=256)
    held_out = dataset(seed=9999, samples=256)
    conns = [PSConnection(address, name) for address in ps]
    initial = loss([0.0] * FEATURES, held_out)  # the ps tasks start from zeros
    gen = random.Random(index)
    for step in range(args.train_steps):
        weights = pull(conns)
        push(conns, gradient(weights, gen.sample(rows, args.batch_size)))
        if step % max(1, args.train_steps // 5) == 0 or step == args.train_steps - 1:
            print(f"{name}: step {step} loss {loss(weights, held_out):.4f}", flush=True)
    if not is_lead(task, index, args.roles):
        for conn in conns:
            conn.call("done")
        return 0
    wait_for_others(conns, args.ps_timeout)
    final = loss(pull(conns), held_out)
    summary = f"final loss {final:.4f} (initial {initial:.4f}, {trainers} trainers)"
    print(f"{name}: {summary}", flush=True)
    write_result(args, {"task": name, "initial_loss": initial, "final_loss": final})
    for conn in conns:  # last: the ps tasks exit once every trainer is done
        conn.call("done")
    return 0 if final < initial else 1


def train_alone(args: argparse.Namespace) -> int:
    rows, held_out = dataset(seed=100, samples=256), dataset(seed=9999, samples=256)
    weights, gen = [0.0] * FEATURES, random.Random(0)
    initial = loss(weights, held_out)
    for _ in range(args.train_steps):
        grad = gradient(weights, gen.sample(rows, args.batch_size))
        weights = [w - args.learning_rate * g for w, g in zip(weights, grad, strict=True)]
    final = loss(weights, held_out)
    print(f"local: final loss {final:.4f} (initial {initial:.4f})", flush=True)
    write_result(args, {"task": "local", "initial_loss": initial, "final_loss": final})
    return 0 if final < initial else 1


def write_result(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.result_file:
        with open(args.result_file, "w") as out:
            json.dump(result, out)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_steps", "--train-steps", type=int, default=200)
    parser.add_argument("--batch_size", "--batch-size", type=int, default=16)
    parser.add_argument("--learning_rate", "--learning-rate", type=float, default=0.05)
    parser.add_argument("--ps-timeout", type=float, default=600.0)
    parser.add_argument("--result-file", default="")
    args, _unknown = parser.parse_known_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    ps = list(cluster.get("ps") or [])
    args.roles = set(cluster)
    ttype, index = str(task.get("type", "")).lower(), int(task.get("index", 0))
    print(f"TF_CONFIG task {ttype or '-'}:{index}, cluster {sorted(cluster)}", flush=True)
    if not ps or not ttype:
        return train_alone(args)
    trainers = sum(len(cluster.get(t) or []) for t in TRAINER_TYPES)
    if ttype == "ps":
        shard = ParameterShard(index, len(ps), trainers, args.learning_rate)
        return serve_ps(ps[index], shard, args.ps_timeout, f"ps:{index}")
    if ttype == "evaluator":
        conns = [PSConnection(address, f"evaluator:{index}") for address in ps]
        print(f"evaluator:{index}: loss {loss(pull(conns), dataset(9999, 256)):.4f}", flush=True)
        return 0
    return train(args, ttype, index, ps, trainers)


if __name__ == "__main__":
    sys.exit(main())

"""Addresses and ports of one gang attempt on this machine.

Upstream every replica is a pod with its own DNS name (``<job>-worker-0``) and the framework's
fixed port. Here all replicas share the host, so each replica gets a loopback endpoint
``127.0.0.1:<free port>`` picked when the gang is launched (a fresh set for every attempt), and
the job's rendezvous port (``MASTER_PORT``) is the master's port. Ports are chosen by binding
port 0 on 127.0.0.1 and kept reserved until all of them are chosen, so one gang never gets the
same port twice; a port can still be taken by another program between planning and the
replica's bind, which shows up as a replica failure and is retried per ``restartPolicy``.
"""

from __future__ import annotations

import socket
from contextlib import ExitStack
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class GangNetwork:
    """One endpoint per replica (keyed ``(replica type, index)``) and the rendezvous endpoint."""

    endpoints: dict[tuple[str, int], Endpoint]
    master: Endpoint

    def of(self, rtype: str, index: int) -> Endpoint:
        return self.endpoints[(rtype, index)]

    def to_status(self) -> dict[str, str]:
        """JSON form for ``status`` (``{"worker-0": "127.0.0.1:41234", ...}``)."""
        out = {f"{t.lower()}-{i}": str(e) for (t, i), e in sorted(self.endpoints.items())}
        out["master"] = str(self.master)
        return out


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago."""
    ports: list[int] = []
    with ExitStack() as stack:
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


def shared_port_hosts(count: int) -> tuple[list[str], int]:
    """``count`` distinct loopback addresses (127.0.1.1, 127.0.1.2, ...) and one port that was
    free on all of them: for frameworks whose replicas all listen on the same port (XGBoost's
    ``WORKER_PORT``). Linux routes all of 127.0.0.0/8 to the loopback interface."""
    hosts = [f"127.0.1.{i + 1}" for i in range(count)]
    for _ in range(20):  # bounded: a port free on the first host is almost always free on all
        port = free_ports(1, hosts[0])[0] if hosts else 0
        if all(_bindable(h, port) for h in hosts[1:]):
            return hosts, port
    raise OSError("could not find one port free on all loopback worker addresses")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def plan_network(
    replicas: list[tuple[str, int]],
    master: tuple[str, int] | None,
    shared_port_types: tuple[str, ...] = (),
) -> GangNetwork:
    """Endpoints for ``replicas`` plus one for the rendezvous: the endpoint of ``master`` if
    given (so MASTER_ADDR:MASTER_PORT is where rank 0 listens), else a port of its own.
    Replicas of ``shared_port_types`` get one address each and a common port."""
    own = [r for r in replicas if r[0] not in shared_port_types]
    shared = [r for r in replicas if r[0] in shared_port_types]
    ports = free_ports(len(own) + 1)
    endpoints = {key: Endpoint(LOOPBACK, port) for key, port in zip(own, ports, strict=False)}
    if shared:
        hosts, port = shared_port_hosts(len(shared))
        endpoints.update({key: Endpoint(h, port) for key, h in zip(shared, hosts, strict=True)})
    rendezvous = endpoints[master] if master in endpoints else Endpoint(LOOPBACK, ports[-1])
    return GangNetwork(endpoints, rendezvous)

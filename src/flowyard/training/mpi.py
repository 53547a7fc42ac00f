"""MPIJob on one host: the launcher runs ``mpirun``, the workers hold the slots.

Upstream (Training Operator v1 MPIJob) every Worker pod runs ``sleep 365d``; the Launcher gets a
hostfile (``<job>-worker-<i> slots=<slotsPerWorker>``) and ``OMPI_MCA_plm_rsh_agent`` pointing at a
``kubexec.sh`` script, so ``mpirun`` starts its daemons in the worker pods with ``kubectl exec``.

flowyard keeps that shape: each Worker replica is a placeholder process that holds its executor
slots for the life of the job; the Launcher gets a hostfile with one line per worker and an rsh
agent script that ignores the host name and runs the daemon command on this machine (what
``kubectl exec`` into a worker pod would do). The hostfile names distinct loopback addresses, so
Open MPI treats every worker as a remote node and goes through the agent. This needs a real
``mpirun`` (Open MPI: ``apt-get install openmpi-bin``); a launcher command that is not mpirun runs
as given, with the same environment. Open MPI refuses to start as root unless
``OMPI_ALLOW_RUN_AS_ROOT`` and ``OMPI_ALLOW_RUN_AS_ROOT_CONFIRM`` are set; the Launcher always
gets both, since replicas run as the server's user (root in many containers).
"""

from __future__ import annotations

import sys
from pathlib import Path

WORKER_HOLD_SECONDS = 365 * 24 * 3600  # as upstream's "sleep 365d"; killed when the job ends

AGENT_SCRIPT = """#!/bin/sh
# flowyard rsh agent for Open MPI: "$1" is the worker host; run the rest on this machine.
# Each daemon gets its own session directory: the daemons of one job on one host would otherwise
# race creating the same ones (Open MPI then fails with "mkdir ... File exists").
shift
OMPI_MCA_orte_tmpdir_base=$(mktemp -d "${TMPDIR:-/tmp}/flowyard-orted.XXXXXX") || exit 1
PRTE_MCA_prte_tmpdir_base=$OMPI_MCA_orte_tmpdir_base  # the same for Open MPI 5 (PRRTE)
export OMPI_MCA_orte_tmpdir_base PRTE_MCA_prte_tmpdir_base
/bin/sh -c "$*"
status=$?
rm -rf "$OMPI_MCA_orte_tmpdir_base"
exit $status
"""


def worker_hosts(count: int) -> list[str]:
    """The loopback address standing for worker ``i``'s pod."""
    return [f"127.0.2.{i + 1}" for i in range(count)]


def hostfile_text(workers: int, slots_per_worker: int) -> str:
    return "".join(f"{host} slots={slots_per_worker}\n" for host in worker_hosts(workers))


def worker_argv(python: str = sys.executable) -> list[str]:
    """The placeholder a Worker replica runs (upstream: ``sleep 365d``)."""
    return [python, "-c", f"import time; time.sleep({WORKER_HOLD_SECONDS})"]


def write_launcher_files(directory: Path, workers: int, slots_per_worker: int) -> dict[str, Path]:
    """Write ``hostfile`` and ``rsh_agent.sh`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    hostfile = directory / "hostfile"
    hostfile.write_text(hostfile_text(workers, slots_per_worker))
    agent = directory / "rsh_agent.sh"
    agent.write_text(AGENT_SCRIPT)
    agent.chmod(0o755)
    return {"hostfile": hostfile, "agent": agent}


def launcher_env(files: dict[str, Path], slots_per_worker: int) -> dict[str, str]:
    """Environment of the Launcher (Open MPI 4 ``OMPI_MCA_*`` and Open MPI 5 ``PRTE_MCA_*``)."""
    return {
        "OMPI_MCA_plm_rsh_agent": str(files["agent"]),
        "OMPI_MCA_orte_default_hostfile": str(files["hostfile"]),
        "OMPI_MCA_orte_keep_fqdn_hostnames": "true",
        "OMPI_MCA_orte_set_default_slots": str(slots_per_worker),
        "PRTE_MCA_plm_rsh_agent": str(files["agent"]),
        "PRTE_MCA_prte_default_hostfile": str(files["hostfile"]),
        # mpirun refuses to run as root unless told; flowyard runs jobs as the server's user.
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    }

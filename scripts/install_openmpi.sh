#!/bin/sh
# Installs Open MPI's `mpirun` (Debian/Ubuntu package openmpi-bin) when it is missing, for the
# MPIJob tests that run a real `mpirun` (tests/training). Idempotent; needs root or passwordless
# sudo. Exits non-zero when it cannot install.
set -eu

if command -v mpirun >/dev/null 2>&1; then
    echo "mpirun present: $(command -v mpirun)"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install_openmpi.sh: not root and no passwordless sudo; install openmpi-bin by hand" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_openmpi.sh: apt-get not found; install Open MPI (mpirun) by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends openmpi-bin
command -v mpirun

#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests (the store's contract suite runs on it).
#
#   scripts/postgres.sh start DIR   initdb into DIR/data, start on a free 127.0.0.1 port and
#                                   print the SQLAlchemy URL on stdout (logs: DIR/postgres.log)
#   scripts/postgres.sh stop DIR    stop that server (DIR may then be removed)
#
# Installs PostgreSQL with apt-get when initdb/pg_ctl are neither on PATH nor under
# /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root, so when run as root the server
# runs as the "postgres" user and DIR is handed to it. TCP on 127.0.0.1 only, no Unix socket,
# password authentication; durability is switched off because the data is thrown away.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

find_bindir() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
        echo "$dir"
        return 0
    fi
    return 1
}

install_postgres() {
    [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed and installing it needs root: run 'apt-get install -y postgresql'"
    echo "postgres.sh: installing PostgreSQL with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y postgresql >&2
}

# Run a command as the user that owns the cluster.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free TCP port found on 127.0.0.1"
}

start() {
    local dir=$1 bindir password port
    bindir=$(find_bindir) || { install_postgres; bindir=$(find_bindir) || die "initdb not found after installing postgresql"; }
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [[ $EUID -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run the server"
        chown postgres: "$dir"
        runuser -u postgres -- test -w "$dir" \
            || die "the postgres user cannot reach $dir: use a directory under a world-traversable path such as /tmp"
    fi
    cd "$dir"
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    printf '%s\n' "$password" >"$dir/pwfile"
    chmod 600 "$dir/pwfile"
    [[ $EUID -eq 0 ]] && chown postgres: "$dir/pwfile"
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
        --auth=scram-sha-256 -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    rm -f "$dir/pwfile"
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            start >&2; then
            echo "$bindir" >"$dir/bindir"
            echo "postgresql+psycopg://postgres:${password}@127.0.0.1:${port}/postgres"
            return 0
        fi
        grep -q "already in use" "$dir/postgres.log" 2>/dev/null || break
    done
    cat "$dir/postgres.log" >&2 || true
    die "PostgreSQL did not start"
}

stop() {
    local dir=$1 bindir
    [[ -d "$dir/data" ]] || return 0
    bindir=$(cat "$dir/bindir" 2>/dev/null || find_bindir) || die "pg_ctl not found"
    cd "$dir"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2
}

case "${1:-}" in
    start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start "$(readlink -f "$2")" ;;
    stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$(readlink -f "$2")" ;;
    *) die "usage: $0 start DIR | stop DIR" ;;
esac

#!/usr/bin/env bash
# A throw-away PostgreSQL cluster with odooops preloaded, for tests and
# benchmarks. Works as root (the server then runs as the postgres user,
# since initdb refuses root) or as an ordinary user.
#
#   tests/harness/cluster.sh start DIR [PORT]   initdb + start; prints env lines
#   tests/harness/cluster.sh stop DIR           stop (fast) and keep the files
#   tests/harness/cluster.sh restart DIR        restart, e.g. after a crash test
#
# After start, `source DIR/env` sets PGHOST, PGPORT, PGUSER, PGDATABASE.
# CLUSTER_TIMEZONE sets the server's TimeZone; CLUSTER_FAKETIME (a libfaketime
# time spec such as "@2026-12-31 23:10:00") starts the server's clock there.
set -euo pipefail

PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local port
  for port in $(seq 54320 54420); do
    if ! (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "no free port between 54320 and 54420" >&2
  exit 1
}

start() {
  local dir=$1 port=${2:-$(free_port)}
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; chmod 755 "$dir"; fi
  as_owner "$PG_BINDIR/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log"
  cat >>"$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'odooops'
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 100
fsync = on
log_min_messages = warning
log_line_prefix = '%m [%p] %q%a '
# Tests expire leases on purpose right after a start or restart; the tests
# of this grace set it themselves.
odooops.restart_lease_grace = 0
CONF
  if [ -n "${CLUSTER_TIMEZONE:-}" ]; then echo "timezone = '$CLUSTER_TIMEZONE'" >>"$dir/data/postgresql.conf"; fi
  cat >"$dir/env" <<ENV
export PGHOST=$dir
export PGPORT=$port
export PGUSER=postgres
export PGDATABASE=postgres
ENV
  server_env "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  cat "$dir/env"
}

# Runs pg_ctl as the cluster's owner, under libfaketime when CLUSTER_FAKETIME
# is set: FAKETIME_DONT_RESET lets every backend the postmaster forks go on
# from the shifted clock instead of starting again at the given time, and
# monotonic clocks stay real so timeouts and latches behave.
server_env() {
  if [ -n "${CLUSTER_FAKETIME:-}" ]; then
    as_owner env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 \
      FAKETIME="$CLUSTER_FAKETIME" FAKETIME_DONT_RESET=1 FAKETIME_DONT_FAKE_MONOTONIC=1 "$@"
  else
    as_owner "$@"
  fi
}

stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || true
}

restart() {
  local dir=$1
  as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
}

cmd=${1:?usage: cluster.sh start|stop|restart DIR [PORT]}
shift
"$cmd" "$@"

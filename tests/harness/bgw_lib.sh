# Helpers for the background-worker tests (sourced). Needs PGHOST/PGPORT/
# PGUSER of a running cluster started by tests/harness/cluster.sh (data in
# $PGHOST/data, server running as postgres when we are root).
PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "${DB:-postgres}" -c "$1"; }
qp() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
fail() { echo "$TEST_NAME: FAIL: $*" >&2; exit 1; }
note() { echo "$TEST_NAME: $*"; }

# Starts a stopped cluster again (pg_ctl start, not initdb).
pg_start() { as_owner "$PG_BINDIR/pg_ctl" -D "$PGHOST/data" -l "$PGHOST/server.log" -w -t 60 start >/dev/null; }
pg_stop() { as_owner "$PG_BINDIR/pg_ctl" -D "$PGHOST/data" -m "${1:-fast}" -w -t 60 stop >/dev/null; }
pg_restart() { as_owner "$PG_BINDIR/pg_ctl" -D "$PGHOST/data" -l "$PGHOST/server.log" -m "${1:-fast}" -w -t 60 restart >/dev/null; }

# Waits until `sql` (in $DB) returns "t", up to $2 seconds.
wait_for() {
  local sql=$1 timeout=${2:-30} i=0
  while [ "$(q "$sql" 2>/dev/null || true)" != t ]; do
    i=$((i + 1))
    [ $i -le $((timeout * 10)) ] || return 1
    sleep 0.1
  done
}

worker_pid() {  # odooops scheduler|dispatcher
  qp "SELECT pid FROM pg_stat_activity WHERE backend_type = 'odooops $1'" 2>/dev/null | head -1
}

# Points the workers at database $DB with the given extra settings and
# restarts the server so every setting (also postmaster-level) applies.
use_database() {
  qp "ALTER SYSTEM SET odooops.database = '$DB'"
  local kv
  for kv in "$@"; do qp "ALTER SYSTEM SET odooops.${kv%%=*} = '${kv#*=}'"; done
  pg_restart fast
}

# Puts the cluster back as it was and drops $DB.
reset_cluster() {
  qp "ALTER SYSTEM RESET ALL" >/dev/null 2>&1 || true
  pg_restart fast >/dev/null 2>&1 || pg_start >/dev/null 2>&1 || true
  qp "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}

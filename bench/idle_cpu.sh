#!/usr/bin/env bash
# CPU used by odooops when there is nothing to do: its background workers
# (scheduler, webhook dispatcher) in a server with the extension created and
# no work queued, and an odooops-worker waiting for runs, each measured from
# /proc/<pid>/stat (user + system time) over SECONDS (default 60). Target:
# under 0.1 % of a core each. Prints the Markdown table of BENCHMARKS.md
# ("Idle").
#
# Needs PGHOST/PGPORT/PGUSER of a server with odooops preloaded and the
# worker built:  SECONDS_IDLE=60 bench/idle_cpu.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${WORKER_BIN:-$ROOT/build/odooops-worker}
SPAN=${SECONDS_IDLE:-60}
DB=odooops_bench_idle
WORK=$(mktemp -d /tmp/odooops-bench-idle.XXXXXX)
chmod 755 "$WORK"
export PGOPTIONS="-c client_min_messages=warning"
old_db=$(psql -X -A -t -d postgres -c "SHOW odooops.database")
cleanup() {
  [ -n "${WPID:-}" ] && kill "$WPID" 2>/dev/null
  psql -X -q -d postgres -c "ALTER SYSTEM SET odooops.database = '$old_db'" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
psql -X -q -d "$DB" -c "CREATE EXTENSION odooops" >/dev/null
psql -X -q -d postgres -c "ALTER SYSTEM SET odooops.database = '$DB'" -c "SELECT pg_reload_conf()" >/dev/null
# The background workers attach to the new database (they restart on the change).
for _ in $(seq 1 100); do
  n=$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND backend_type LIKE 'odooops%'")
  [ "$n" -ge 2 ] && break
  sleep 0.2
done
"$W" --dsn "dbname=$DB" --worker-id idle-bench --state-dir "$WORK/state" --storage "file://$WORK/storage" \
  --odoo-bin "$ROOT/tests/harness/odoo_standin.py" >"$WORK/worker.log" 2>&1 &
WPID=$!
sleep 3

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
mapfile -t procs < <(psql -X -A -t -F ' ' -d postgres -c "SELECT pid, backend_type FROM pg_stat_activity
                       WHERE datname = '$DB' AND backend_type LIKE 'odooops%' ORDER BY backend_type")
procs+=("$WPID odooops-worker")
declare -A before
for p in "${procs[@]}"; do before[${p%% *}]=$(ticks "${p%% *}"); done
sleep "$SPAN"
hz=$(getconf CLK_TCK)
echo "| process (idle, $SPAN s) | CPU, % of one core | target |"
echo "|---|---|---|"
for p in "${procs[@]}"; do
  pid=${p%% *}
  used=$(( $(ticks "$pid") - before[$pid] ))
  python3 -c "import sys; print('| %s | %.3f | < 0.1 |' % (sys.argv[1], 100.0 * int(sys.argv[2]) / int(sys.argv[3]) / int(sys.argv[4])))" \
    "${p#* }" "$used" "$hz" "$SPAN"
done

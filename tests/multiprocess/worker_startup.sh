#!/usr/bin/env bash
# The real worker at start: it waits for a control plane for ever (with
# backoff, one message per interval) and registers once one is there; a
# SIGTERM ends it within 2 s while it waits; --startup-timeout gives up with
# 69; its exit codes (sysexits) and --version (the release).
#
# Needs PGHOST (the directory of a tests/harness/cluster.sh cluster: this
# test stops it for a while), PGPORT, PGUSER; the worker in build/.
set -euo pipefail
source "$(dirname "$0")/../e2e/lib.sh"
CLUSTER=$PGHOST
[ -f "$CLUSTER/data/postgresql.conf" ] || { echo "worker_startup: PGHOST must be a tests/harness/cluster.sh directory" >&2; exit 1; }
server_up() { pg_isready -q -h "$CLUSTER" -p "$PGPORT"; }
EXTRA_CLEANUP+=("server_up || $ROOT/tests/harness/cluster.sh restart $CLUSTER 2>/dev/null")

# A port in this test's range with nothing listening.
DEAD_PORT=
for p in $(seq 55899 -1 55880); do
  (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null || { DEAD_PORT=$p; break; }
done
[ -n "$DEAD_PORT" ] || fail "no free port between 55880 and 55899"
# run_worker NAME FLAGS...: the binary in the foreground; sets RC.
run_worker() {
  local name=$1; shift
  RC=0
  "$WORKER_BIN" --odoo-bin "$STANDIN" --state-dir "$STATE" --worker-id "$name" "$@" >>"$WORK/worker-$name.log" 2>&1 || RC=$?
}
# wait_log NAME PATTERN: waits until the worker's log shows PATTERN.
wait_log() {
  for _ in $(seq 1 300); do grep -q "$2" "$WORK/worker-$1.log" 2>/dev/null && return 0; sleep 0.1; done
  fail "worker $1 never logged \"$2\""
}

setup_control_plane

say "1. --version is the release; exit codes"
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/control/odooops.control")
[ "$("$WORKER_BIN" --version)" = "odooops-worker $version" ] || fail "--version says $("$WORKER_BIN" --version), the release is $version"
run_worker x1 --no-such-flag;            [ "$RC" = 64 ] || fail "an unknown flag exited $RC, expected 64 (EX_USAGE)"
run_worker x2 --lease;                   [ "$RC" = 64 ] || fail "a flag without its value exited $RC, expected 64"
run_worker x3 --lease soon;              [ "$RC" = 78 ] || fail "a bad value exited $RC, expected 78 (EX_CONFIG)"
run_worker x4 --dsn "dbname=$CP_DB user=odooops_e2e_worker" --once
[ "$RC" = 78 ] || fail "a worker id the login may not act as exited $RC, expected 78"
t0=$(date +%s%N)
run_worker x5 --dsn "host=127.0.0.1 port=$DEAD_PORT dbname=x" --startup-timeout 2
[ "$RC" = 69 ] || fail "no control plane within --startup-timeout exited $RC, expected 69 (EX_UNAVAILABLE)"
elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$elapsed" -lt 8000 ] || fail "--startup-timeout 2 took $elapsed ms"

say "2. SIGTERM while waiting for a control plane ends the worker within 2 s"
"$WORKER_BIN" --odoo-bin "$STANDIN" --state-dir "$STATE" --worker-id x6 \
  --dsn "host=127.0.0.1 port=$DEAD_PORT dbname=x" >>"$WORK/worker-x6.log" 2>&1 &
pid=$!
WORKER_PIDS+=("$pid")
wait_log x6 "cannot connect to the control plane"
sleep 3   # inside the backoff, well after the first try
alive "$pid" || fail "the worker gave up without a control plane"
t0=$(date +%s%N)
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$elapsed" -le 2000 ] || fail "SIGTERM during the backoff took $elapsed ms"
[ "$rc" = 0 ] || fail "the worker stopped by SIGTERM exited $rc"
grep -q "stopped before reaching the control plane" "$WORK/worker-x6.log" || fail "no message about the stop"

say "3. a control plane away for 25 s at start: the worker waits, then registers"
scalar "INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_e2e_worker', 'ws')" >/dev/null
"$ROOT/tests/harness/cluster.sh" stop "$CLUSTER"
"$WORKER_BIN" --odoo-bin "$STANDIN" --state-dir "$STATE" --worker-id ws \
  --dsn "dbname=$CP_DB user=odooops_e2e_worker" >>"$WORK/worker-ws.log" 2>&1 &
WORKER_PIDS+=($!)
LAST_WORKER_PID=$!
wait_log ws "cannot connect to the control plane"
sleep 25   # the old worker gave up after about 15 s
alive "$LAST_WORKER_PID" || fail "the worker gave up while the control plane was away"
tries_logged=$(grep -c "cannot connect to the control plane" "$WORK/worker-ws.log")
[ "$tries_logged" -le 2 ] || fail "$tries_logged messages for one outage; one per minute expected"
"$ROOT/tests/harness/cluster.sh" restart "$CLUSTER" 2>/dev/null
for _ in $(seq 1 600); do
  [ "$(scalar "SELECT count(*) FROM ops.agents WHERE worker_id = 'ws' AND status = 'active'")" = 1 ] && break
  sleep 0.1
done
[ "$(scalar "SELECT count(*) FROM ops.agents WHERE worker_id = 'ws'")" = 1 ] || fail "the worker did not register once the control plane was back"
grep -q "reached the control plane after" "$WORK/worker-ws.log" || fail "no message about reaching the control plane"
say "OK: waits for ever with backoff, registers when the control plane comes, SIGTERM within ${elapsed} ms, exit codes 64/69/78, --version $version"

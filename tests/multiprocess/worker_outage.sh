#!/usr/bin/env bash
# The worker across control-plane outages, with the real binary: a run whose
# step prints numbered lines slowly while the control plane restarts, then
# is stopped for 30 s (the step ends meanwhile, successfully), then comes
# back; and the same run shape while ops.append_events is refused for a
# while. Every line is in ops.run_events exactly once, the run's status is
# the step's true result, the worker kept going, heartbeats went on, and its
# own log stayed small with a timestamp and a level on every line.
#
# Needs PGHOST (the directory of a tests/harness/cluster.sh cluster: this
# test restarts and stops it), PGPORT, PGUSER; the worker in build/.
set -euo pipefail
source "$(dirname "$0")/../e2e/lib.sh"
CLUSTER=$PGHOST
[ -f "$CLUSTER/data/postgresql.conf" ] || { echo "worker_outage: PGHOST must be a tests/harness/cluster.sh directory" >&2; exit 1; }
server_up() { pg_isready -q -h "$CLUSTER" -p "$PGPORT"; }
# Whatever happens, the shared server runs again when this test ends.
EXTRA_CLEANUP+=("server_up || $ROOT/tests/harness/cluster.sh restart $CLUSTER")

LINES=400
# A build whose one step prints LINES numbered lines, 20 a second, and
# leaves a mark when it is done.
mkdir -p "$WORK/steps/build"
cat >"$WORK/steps/build/10-count" <<STEP
#!/usr/bin/env bash
for i in \$(seq 1 $LINES); do echo "line \$i of $LINES"; sleep 0.05; done
touch "$WORK/step-done.\$ODOOOPS_RUN_ID"
STEP
chmod +x "$WORK/steps/build/10-count"

# lines RUN -> "stored distinct first last" of the step's numbered lines
lines() {
  scalar "SELECT count(*) || ' ' || count(DISTINCT message) || ' ' || coalesce(min(n), 0) || ' ' || coalesce(max(n), 0)
            FROM (SELECT message, split_part(message, ' ', 2)::int AS n FROM ops.run_events
                   WHERE run_id = $1 AND kind = 'log' AND message LIKE 'line % of $LINES') x"
}
# wait_line RUN N: waits until line N of the run is stored.
wait_line() {
  for _ in $(seq 1 300); do
    [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $1 AND message = 'line $2 of $LINES'")" = 1 ] && return 0
    sleep 0.1
  done
  fail "line $2 of run $1 never arrived"
}
check_all_lines_once() {
  local got; got=$(lines "$1")
  [ "$got" = "$LINES $LINES 1 $LINES" ] || fail "run $1: lines stored/distinct/first/last are $got, expected $LINES $LINES 1 $LINES"
}
check_log_format() {
  local bad
  bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (DEBUG|INFO|WARNING|ERROR) odooops-worker\[[^]]+\]: ' "$1" || true)
  [ "$bad" = 0 ] || { grep -vE '^[0-9]{4}-.*Z (DEBUG|INFO|WARNING|ERROR) ' "$1" | head -5 >&2; fail "$bad lines of $1 lack a timestamp or a level"; }
}

setup_control_plane
start_worker wo --steps-dir "$WORK/steps" --kinds build --lease 60 --heartbeat-interval 5
WORKER=$LAST_WORKER_PID

say "1. the control plane restarts, then is away for 30 s while the step ends"
run=$(queue dev build)
wait_line "$run" 20
"$ROOT/tests/harness/cluster.sh" restart "$CLUSTER" 2>/dev/null
wait_line "$run" 120   # delivered after the restart
"$ROOT/tests/harness/cluster.sh" stop "$CLUSTER"
down_at=$(date +%s)
# The step ends while the control plane is away: its result must wait.
for _ in $(seq 1 300); do [ -e "$WORK/step-done.$run" ] && break; sleep 0.1; done
[ -e "$WORK/step-done.$run" ] || fail "the step did not end during the outage"
sleep $((30 - ($(date +%s) - down_at)))
server_up && fail "the control plane came back by itself"
"$ROOT/tests/harness/cluster.sh" restart "$CLUSTER" 2>/dev/null
wait_status "$run" "succeeded|failed" 90
[ "$(scalar "SELECT status FROM ops.runs WHERE id = $run")" = succeeded ] || { show_events "$run" >&2; fail "run $run is not succeeded although its step was"; }
check_all_lines_once "$run"
[ "$(scalar "SELECT attempt FROM ops.runs WHERE id = $run")" = 1 ] || fail "run $run needed another attempt"
alive "$WORKER" || fail "the worker did not survive the outage"

say "2. ops.append_events refused for 20 s: backoff, heartbeats go on, one message per interval"
run=$(queue dev build)
wait_line "$run" 20
log_lines_before=$(wc -l <"$WORK/worker-wo.log")
lease_before=$(scalar "SELECT extract(epoch FROM lease_expires_at) FROM ops.runs WHERE id = $run")
beat_before=$(scalar "SELECT extract(epoch FROM last_heartbeat_at) FROM ops.agents WHERE worker_id = 'wo'")
psql -X -q -d "$CP_DB" -c "REVOKE EXECUTE ON FUNCTION ops.append_events(bigint, jsonb, text, integer) FROM odooops_worker"
sleep 20   # the length of the refusal, not a proof: what follows is checked
lease_during=$(scalar "SELECT extract(epoch FROM lease_expires_at) FROM ops.runs WHERE id = $run")
beat_during=$(scalar "SELECT extract(epoch FROM last_heartbeat_at) FROM ops.agents WHERE worker_id = 'wo'")
psql -X -q -d "$CP_DB" -c "GRANT EXECUTE ON FUNCTION ops.append_events(bigint, jsonb, text, integer) TO odooops_worker"
awk -v a="$lease_before" -v b="$lease_during" 'BEGIN { exit !(b > a) }' || fail "the run's lease was not extended while events were refused"
awk -v a="$beat_before" -v b="$beat_during" 'BEGIN { exit !(b > a) }' || fail "the agent's heartbeat stopped while events were refused"
wait_status "$run" "succeeded|failed" 90
[ "$(scalar "SELECT status FROM ops.runs WHERE id = $run")" = succeeded ] || fail "run $run is not succeeded"
check_all_lines_once "$run"
log_growth=$(( $(wc -l <"$WORK/worker-wo.log") - log_lines_before ))
[ "$log_growth" -le 20 ] || { tail -30 "$WORK/worker-wo.log" >&2; fail "the worker wrote $log_growth log lines during 20 s of refusals"; }
[ "$(grep -c 'permission denied for function append_events' "$WORK/worker-wo.log")" -le 2 ] \
  || fail "the same refusal was logged more than once per interval"
alive "$WORKER" || fail "the worker did not survive the refusals"

check_log_format "$WORK/worker-wo.log"
say "OK: every line stored once across a restart, a 30 s outage and 20 s of refusals; the runs succeeded as their steps did; heartbeats went on; $log_growth log lines for the refusals"

#!/usr/bin/env bash
# The real worker whose row in ops.agents is deleted, while idle and while a
# run executes: it registers again (with its kinds) and the run still
# succeeds.
#
# Needs PGHOST/PGPORT/PGUSER of a server with odooops preloaded; the worker
# in build/.
set -euo pipefail
source "$(dirname "$0")/../e2e/lib.sh"

mkdir -p "$WORK/steps/build"
cat >"$WORK/steps/build/10-wait" <<STEP
#!/usr/bin/env bash
# Runs until the test says so.
while [ ! -e "$WORK/go.\$ODOOOPS_RUN_ID" ]; do echo waiting; sleep 0.2; done
STEP
chmod +x "$WORK/steps/build/10-wait"

agent_row() { scalar "SELECT count(*) FROM ops.agents WHERE worker_id = 'wr' AND kinds = ARRAY['build']"; }
wait_registered() {
  for _ in $(seq 1 300); do [ "$(agent_row)" = 1 ] && return 0; sleep 0.1; done
  fail "worker wr is not (again) in ops.agents: $1"
}

setup_control_plane
start_worker wr --steps-dir "$WORK/steps" --kinds build --lease 30 --heartbeat-interval 1
WORKER=$LAST_WORKER_PID
wait_registered "after start"

say "1. deleted while idle"
scalar "DELETE FROM ops.agents WHERE worker_id = 'wr'" >/dev/null
[ "$(agent_row)" = 0 ] || fail "the row was not deleted"
wait_registered "after its row was deleted while idle"

say "2. deleted while a run executes"
run=$(queue dev build)
wait_status "$run" running 30
scalar "DELETE FROM ops.agents WHERE worker_id = 'wr'" >/dev/null
wait_registered "after its row was deleted during a run"
touch "$WORK/go.$run"
wait_status "$run" "succeeded|failed" 60
[ "$(scalar "SELECT status FROM ops.runs WHERE id = $run")" = succeeded ] || fail "run $run did not succeed"
alive "$WORKER" || fail "the worker stopped"
[ "$(scalar "SELECT count(*) FROM ops.agent_events e JOIN ops.agents a ON a.id = e.agent_id
             WHERE a.worker_id = 'wr' AND e.kind = 'registered'")" -ge 1 ] || fail "no registration event"
say "OK: registered again after its row was deleted, idle and during a run; the run succeeded"

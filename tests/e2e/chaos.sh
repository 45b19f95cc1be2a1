#!/usr/bin/env bash
# Chaos: kill -9 of a worker mid-run -> its step's process group dies with it,
# the run is requeued after its lease and claimed by a second, idle worker
# within the lease + 5 s of the kill and completed by it, and
# late writes of the first attempt are refused (OD003). A stopped worker
# (SIGSTOP past its lease) that wakes up finds its run taken and stops without
# writing. SIGTERM drains: the current run finishes; past --drain-grace it is
# handed back to the queue with an event.
source "$(dirname "$0")/lib.sh"
setup_control_plane
cp_psql -c "ALTER DATABASE $CP_DB SET odooops.requeue_backoff_base = 0" >/dev/null

# A test workflow whose first attempt is slow and whose later attempts are quick.
mkdir -p "$WORK/steps/test" "$STATE"
cat >"$WORK/steps/test/10-work" <<'SH'
#!/usr/bin/env bash
echo "attempt $ODOOOPS_ATTEMPT of run $ODOOOPS_RUN_ID starts (pid $$)"
echo "$$" >"$ODOOOPS_STATE_DIR/step-$ODOOOPS_RUN_ID-$ODOOOPS_ATTEMPT.pid"
secs=60   # the worker passes no other environment: the test sets the duration in a file
[ -f "$ODOOOPS_STATE_DIR/slow-seconds" ] && secs=$(cat "$ODOOOPS_STATE_DIR/slow-seconds")
[ "$ODOOOPS_ATTEMPT" = 1 ] || secs=1
sleep "$secs" &   # a child in the step's process group
echo $! >"$ODOOOPS_STATE_DIR/child-$ODOOOPS_RUN_ID-$ODOOOPS_ATTEMPT.pid"
wait
echo "attempt $ODOOOPS_ATTEMPT done"
echo "::odooops::metadata {\"done_by_attempt\": $ODOOOPS_ATTEMPT}" >&3   # the command channel
SH
chmod +x "$WORK/steps/test/10-work"
FAST=(--steps-dir "$WORK/steps" --lease 6 --heartbeat-interval 1)
wait_event() {  # wait_event RUN LIKE-PATTERN [SECONDS]
  for _ in $(seq 1 $(( ${3:-30} * 10 ))); do
    [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $1 AND message LIKE '$2'")" != 0 ] && return 0
    sleep 0.1
  done
  show_events "$1" >&2; fail "run $1: no event like '$2'"
}

# 1. kill -9 mid-run
run=$(queue dev test)
start_worker chaos-a "${FAST[@]}" --rescue false
a=$LAST_WORKER_PID
wait_event "$run" 'attempt 1 of run % starts%'
for _ in $(seq 1 50); do [ -s "$STATE/child-$run-1.pid" ] && break; sleep 0.1; done
step_pid=$(cat "$STATE/step-$run-1.pid")
# Another worker is idle when the first one dies: it rescues the expired
# lease (the default) and takes the run.
start_worker chaos-b "${FAST[@]}"
killed_at=$(scalar "SELECT extract(epoch FROM clock_timestamp())")
kill -KILL "$a"
for _ in $(seq 1 50); do alive "$step_pid" || break; sleep 0.1; done
alive "$step_pid" && fail "the step of the killed worker still runs (pid $step_pid)"
child_pid=$(cat "$STATE/child-$run-1.pid")
for _ in $(seq 1 50); do alive "$child_pid" || break; sleep 0.1; done
alive "$child_pid" && fail "the step's child $child_pid survived its worker"
say "kill -9: the step's process group died with its worker"
wait_status "$run" succeeded 40
# The run resumed elsewhere within its lease (6 s, renewed every second)
# and 5 s for the rescue and the claim; measured on the server's clock.
taken_after=$(scalar "SELECT round((extract(epoch FROM created_at) - $killed_at)::numeric, 1) FROM ops.run_events
                       WHERE run_id = $run AND kind = 'transition' AND to_status = 'claimed' ORDER BY id DESC LIMIT 1")
awk -v t="$taken_after" 'BEGIN { exit !(t > 0 && t <= 6 + 5) }' \
  || { show_events "$run" >&2; fail "the second worker claimed the run $taken_after s after the kill, more than the lease (6 s) + 5 s"; }
say "the second worker claimed the run $taken_after s after the kill (lease 6 s)"
[ "$(scalar "SELECT claimed_by || ':' || attempt || ':' || (result->>'done_by_attempt') FROM ops.runs WHERE id = $run")" = "chaos-b:2:2" ] \
  || fail "run not completed by the second worker's attempt 2: $(scalar "SELECT claimed_by, attempt, result FROM ops.runs WHERE id = $run")"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $run AND kind = 'transition' AND from_status = 'running' AND to_status = 'queued'")" = 1 ] \
  || fail "no requeue transition"
late=$(psql -X -q -A -t -d "$CP_DB" -c "SELECT ops.append_event($run, 'info', 'late write', '{}', 'chaos-a', 1)" 2>&1 || true)
[[ $late == *"no longer holds"* || $late == *OD003* || $late == *stale* || $late == *"not held"* || $late == *chaos-a* ]] || fail "late append by attempt 1 not refused: $late"
late=$(psql -X -q -A -t -d "$CP_DB" -v VERBOSITY=verbose -c "SELECT ops.finish_run($run, 'failed', '{}', 'chaos-a', 1)" 2>&1 || true)
[[ $late == *OD00[13]* ]] || fail "late finish by attempt 1 not refused: $late"
say "requeued after the lease, completed by chaos-b (attempt 2); attempt 1's late writes refused"

# 2. a worker stopped past its lease wakes up and writes nothing
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
run=$(queue dev test)
start_worker chaos-c "${FAST[@]}" --rescue false
c=$LAST_WORKER_PID
wait_event "$run" 'attempt 1 of run % starts%'
kill -STOP "$c"
start_worker chaos-d "${FAST[@]}"
wait_status "$run" succeeded 40
kill -CONT "$c"
for _ in $(seq 1 50); do grep -q "no longer holds the run" "$WORK/worker-chaos-c.log" && break; sleep 0.1; done
grep -q "no longer holds the run" "$WORK/worker-chaos-c.log" || fail "chaos-c did not notice it lost the run"
requeued_at=$(scalar "SELECT min(id) FROM ops.run_events WHERE run_id = $run AND to_status = 'queued' AND from_status IS NOT NULL")
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $run AND attempt = 1 AND id > $requeued_at")" = 0 ] \
  || fail "attempt 1 wrote events after its run was requeued"
[ "$(scalar "SELECT result->>'done_by_attempt' FROM ops.runs WHERE id = $run")" = 2 ] || fail "result overwritten"
say "a worker stopped past its lease found its run taken and wrote nothing"
kill -TERM "$c" "$LAST_WORKER_PID" 2>/dev/null; wait "$c" "$LAST_WORKER_PID" 2>/dev/null || true

# 3. SIGTERM drains: the current run finishes within the grace period
run=$(queue dev test)
echo 3 >"$STATE/slow-seconds"
start_worker drain-e "${FAST[@]}" --drain-grace 30
e=$LAST_WORKER_PID
wait_event "$run" 'attempt 1 of run % starts%'
kill -TERM "$e"
wait "$e" || fail "drain-e exited with $?"
[ "$(scalar "SELECT status FROM ops.runs WHERE id = $run")" = succeeded ] || fail "the drained run did not finish"
[ "$(scalar "SELECT status FROM ops.agents WHERE worker_id = 'drain-e'")" = offline ] || fail "drained worker not offline"
say "SIGTERM: the current run finished, the worker exited 0 and is offline"

# 4. past the grace period the run is handed back with an event
rm -f "$STATE/slow-seconds"
run=$(queue dev test)
start_worker drain-f "${FAST[@]}" --drain-grace 1
f=$LAST_WORKER_PID
wait_event "$run" 'attempt 1 of run % starts%'
kill -TERM "$f"
wait "$f" || fail "drain-f exited with $?"
[ "$(scalar "SELECT status FROM ops.runs WHERE id = $run")" = queued ] || fail "the run was not handed back"
wait_event "$run" '%hands the run back to the queue%' 1
step_pid=$(cat "$STATE/step-$run-1.pid")
alive "$step_pid" && fail "the handed-back run's step still runs"
start_worker drain-g "${FAST[@]}"
wait_status "$run" succeeded 30
say "SIGTERM past the grace period: run handed back with an event and completed by another worker"
say "PASS"

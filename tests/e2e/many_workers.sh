#!/usr/bin/env bash
# Three workers, one queue: 12 runs (builds, tests and deploys to three
# environments) are each executed exactly once, deploys to one environment
# never overlap, and every run ends succeeded on its first attempt. The only
# coordination point is PostgreSQL. The Odoo is the stand-in, not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
for w in m1 m2 m3; do start_worker "$w" --heartbeat-interval 2; done
runs=()
for env in dev staging production; do
  runs+=("$(queue "$env" build)" "$(queue "$env" deploy)" "$(queue "$env" deploy)" "$(queue "$env" test)")
done
for r in "${runs[@]}"; do wait_status "$r" succeeded 180; done
[ "$(scalar "SELECT count(*) FROM ops.runs WHERE status = 'succeeded' AND attempt = 1")" = 12 ] || fail "not all runs succeeded on attempt 1"
[ "$(scalar "SELECT count(DISTINCT claimed_by) FROM ops.runs")" -ge 2 ] || fail "the work was not shared"
# Every run was claimed once and started once.
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE kind = 'transition' AND to_status = 'claimed'")" = 12 ] || fail "a run was claimed twice"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE message LIKE 'worker % runs %'")" = 12 ] || fail "a run was executed twice"
# Deploys to one environment never overlap in time.
overlaps=$(scalar "SELECT count(*) FROM ops.runs a JOIN ops.runs b ON a.environment_id = b.environment_id AND a.id < b.id
                    WHERE a.workflow = 'deploy' AND b.workflow = 'deploy'
                      AND tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at)")
[ "$overlaps" = 0 ] || fail "$overlaps overlapping deploys in one environment"
for p in "$PORT_DEV" "$PORT_STAGING" "$PORT_PROD"; do health "$p" | has '"pass"' || fail "port $p not healthy"; done
say "12 runs by $(scalar "SELECT string_agg(DISTINCT claimed_by, ',') FROM ops.runs"): each once, no overlapping deploys, three environments healthy"

# A test run and a deploy of one environment at once: both run as the
# environment's operating-system user, and the deploy's sweep of that user's
# leftover processes must not kill the test run's Odoo.
echo 8 >"$REPO/addons/acme_sale/SLOW_STANDIN_TESTS"
commit "Slow tests"
# The deploy can only run on dev's host worker (a worker runs one run at a
# time): the test run must go to another one. The host is paused until
# another worker has claimed it (tests are not bound to a host).
host=$(scalar "SELECT host_worker_id FROM ops.environments WHERE name = 'dev'")
host_pid=${WORKER_PIDS[${host#m} - 1]}
kill -STOP "$host_pid"
slow=$(queue dev test)
for _ in $(seq 1 100); do
  [ -n "$(scalar "SELECT claimed_by FROM ops.runs WHERE id = $slow")" ] && break
  sleep 0.1
done
kill -CONT "$host_pid"
[ "$(scalar "SELECT claimed_by FROM ops.runs WHERE id = $slow")" != "$host" ] || fail "dev's host $host claimed test run $slow"
for _ in $(seq 1 300); do
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $slow AND message LIKE 'testing %'")" = 1 ] && break
  sleep 0.1
done
[ "$(scalar "SELECT status FROM ops.runs WHERE id = $slow")" = running ] || fail "test run $slow is not testing"
beside=$(queue dev deploy)
wait_status "$beside" succeeded 60
wait_status "$slow" succeeded 60
if [ "$(id -u)" = 0 ]; then   # the worker runs Odoo as per-environment users
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $beside AND message LIKE 'a test run of dev is running as %'")" -ge 1 ] ||
    fail "deploy $beside did not spare the test run"
fi
say "deploy $beside of dev while test run $slow tested dev: both succeeded"
say "PASS"

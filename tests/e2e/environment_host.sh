#!/usr/bin/env bash
# Two workers on two state directories (two hosts, as far as the
# environments' files go). The worker that deployed staging hosts it: a
# backup of staging is taken by that worker, with staging's filestore in it,
# even while the other worker is idle and claiming (it takes a build
# meanwhile, and never the backup). While the host is stopped the backup
# waits and says why. Then host-a is retired and staging moved to host-b:
# a deploy and a restore of the backup there bring it back to life. The
# Odoo is the stand-in, not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
STATE_B=$WORK/state-b
# shellcheck disable=SC2016  # expanded by the cleanup
EXTRA_CLEANUP+=('for pf in "$STATE_B"/envs/*/*/odoo.pid; do [ -f "$pf" ] && kill -KILL "$(cat "$pf")"; done')

start_worker host-a --storage "file://$WORK/backups" --heartbeat-interval 1
HOST_A=$LAST_WORKER_PID
d=$(queue staging deploy)
wait_status "$d" succeeded 90
STAGING=e2e_environment_host_staging
attachment=$STATE/envs/acme/staging/data/filestore/$STAGING/5c/5c0ffee
mkdir -p "$(dirname "$attachment")"
echo "staging attachment" >"$attachment"
say "deploy $d by host-a"

# The other host: its own state directory, every workflow.
start_worker host-b --storage "file://$WORK/backups" --heartbeat-interval 1 --state-dir "$STATE_B"
for _ in $(seq 1 100); do
  [ "$(scalar "SELECT count(*) FROM ops.agents WHERE worker_id = 'host-b'")" = 1 ] && break
  sleep 0.1
done
# host-a stops answering (not lost yet: its runs wait for it).
kill -STOP "$HOST_A"
b=$(queue_backup staging)
build=$(queue staging build)
wait_status "$build" succeeded 60
[ "$(scalar "SELECT claimed_by FROM ops.runs WHERE id = $build")" = host-b ] || fail "host-b did not take the build"
sleep 3   # host-b polls every second: three more chances to take the backup
[ "$(scalar "SELECT status FROM ops.runs WHERE id = $b")" = queued ] ||
  fail "backup $b of staging was taken by $(scalar "SELECT claimed_by FROM ops.runs WHERE id = $b") while its host was stopped"
reason=$(scalar "SELECT ops.run_waiting_reason($b)")
[[ $reason == *"host-a"* ]] || fail "backup $b waits without naming its host: '$reason'"
say "host-a stopped: host-b built $build, backup $b waits ($reason)"

kill -CONT "$HOST_A"
wait_status "$b" succeeded 90
[ "$(scalar "SELECT claimed_by FROM ops.runs WHERE id = $b")" = host-a ] || fail "backup $b was not taken by host-a"
loc=$(scalar "SELECT location FROM ops.backups WHERE run_id = $b")
filestore=$(dirname "${loc#file://}")/filestore.tar
tar -tf "$filestore" | has '5c/5c0ffee$' || fail "backup $b holds no staging attachment: $(tar -tf "$filestore" | head -5)"
[ ! -e "$STATE_B/envs/acme/staging/data" ] || fail "host-b holds files of staging"
[ "$(scalar "SELECT host_worker_id FROM ops.environments WHERE name = 'staging'")" = host-a ] ||
  fail "the worker that deployed staging is not recorded as its host"
say "backup $b by host-a holds staging's filestore; host-b holds none of staging's files"

# host-a is retired: staging moves to host-b. A move copies no files: a
# deploy builds the release on host-b and a restore of the backup brings
# the filestore there.
kill -TERM "$HOST_A"; wait "$HOST_A" || true
kill -KILL "$(cat "$STATE/envs/acme/staging/odoo.pid")" 2>/dev/null || true
scalar "SELECT 1 FROM ops.move_environment(1, 'staging', 'host-b', NULL, 'host-a retired')" >/dev/null
[ "$(scalar "SELECT payload ->> 'from_worker' FROM ops.audit_log WHERE action = 'environment.move'")" = host-a ] ||
  fail "the move is not in the audit trail"
d2=$(queue staging deploy)
wait_status "$d2" succeeded 90
[ "$(scalar "SELECT claimed_by FROM ops.runs WHERE id = $d2")" = host-b ] || fail "deploy $d2 after the move was not taken by host-b"
r=$(queue_restore "$(backup_of "$b")" staging)
wait_status "$r" succeeded 120
[ "$(scalar "SELECT claimed_by FROM ops.runs WHERE id = $r")" = host-b ] || fail "restore $r after the move was not taken by host-b"
cmp -s "$attachment" "$STATE_B/envs/acme/staging/data/filestore/$STAGING/5c/5c0ffee" ||
  fail "restore $r did not bring staging's filestore to host-b"
health "$PORT_STAGING" | has '"pass"' || fail "staging does not serve on host-b"
say "staging moved to host-b: deploy $d2 and restore $r there brought its release and filestore; it serves"
say "PASS"

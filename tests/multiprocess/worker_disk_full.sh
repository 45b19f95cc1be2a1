#!/usr/bin/env bash
# The real worker whose disk fills up: its state directory is a 20 MiB
# tmpfs, filled while a run's step writes there. The run is handed back
# (queued again, not failed) with a delay, the agent is marked unhealthy,
# nothing more is claimed while space is short (the queue does not drain
# into failures); once space returns the agent is healthy again and every
# run succeeds.
#
# Needs root (mount), PGHOST/PGPORT/PGUSER of a server with odooops
# preloaded; the worker in build/.
set -euo pipefail
source "$(dirname "$0")/../e2e/lib.sh"
[ "$(id -u)" = 0 ] || { echo "worker_disk_full: needs root to mount a tmpfs" >&2; exit 1; }
mkdir -p "$STATE"
mount -t tmpfs -o size=20m,mode=0755 odooops-disk-full "$STATE"
EXTRA_CLEANUP+=("umount -l $STATE")

mkdir -p "$WORK/steps/build"
cat >"$WORK/steps/build/10-write" <<'STEP'
#!/usr/bin/env bash
# Writes 64 KiB into the workspace with every line, as a checkout would.
set -eo pipefail
for i in $(seq 1 60); do
  echo "line $i"
  head -c 65536 /dev/zero >>"$ODOOOPS_WORKSPACE/data"
  sleep 0.1
done
STEP
chmod +x "$WORK/steps/build/10-write"

agent() { scalar "SELECT healthy FROM ops.agents WHERE worker_id = 'wd'"; }
wait_agent() {
  for _ in $(seq 1 300); do [ "$(agent)" = "$1" ] && return 0; sleep 0.1; done
  fail "the agent's healthy flag is $(agent), expected $1"
}

setup_control_plane
start_worker wd --steps-dir "$WORK/steps" --kinds build --min-free-bytes $((2 << 20)) \
  --min-free-percent 50 --disk-retry-delay 3
WORKER=$LAST_WORKER_PID
wait_agent t

say "1. the disk fills up during a run: handed back, not failed; the agent unhealthy"
run=$(queue dev build)
for _ in $(seq 1 300); do
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $run AND message = 'line 5'")" = 1 ] && break
  sleep 0.1
done
dd if=/dev/zero of="$STATE/fill" bs=1M 2>/dev/null || true   # until the disk is full
[ "$(df --output=avail -B1 "$STATE" | tail -1)" -lt $((1 << 20)) ] || fail "the tmpfs did not fill up"
wait_agent f
wait_status "$run" queued 60
[ "$(scalar "SELECT attempt FROM ops.runs WHERE id = $run")" = 1 ] || fail "run $run was not handed back on attempt 1"
scalar "SELECT message FROM ops.run_events WHERE run_id = $run AND kind = 'transition' ORDER BY id DESC LIMIT 1" \
  | has "disk is full.*(claimable again in 3 s)" || fail "the hand-back does not say the disk is full and the delay"
[ "$(scalar "SELECT count(*) FROM ops.runs WHERE id = $run AND status = 'failed'")" = 0 ] || fail "run $run failed"
scalar "SELECT health_detail FROM ops.agents WHERE worker_id = 'wd'" | has "disk full" || fail "the agent's health does not say why"

say "2. while the disk is full the worker claims nothing"
more1=$(queue dev build); more2=$(queue dev build)
sleep 6   # twice the retry delay and several poll intervals: claims would have happened
[ "$(scalar "SELECT count(*) FROM ops.runs WHERE id IN ($run, $more1, $more2) AND status = 'queued'")" = 3 ] \
  || { scalar "SELECT id, status FROM ops.runs" >&2; fail "runs were claimed while the disk was full"; }
alive "$WORKER" || fail "the worker stopped"

say "3. space returns: healthy again, every run succeeds"
rm -f "$STATE/fill"
wait_agent t
for r in "$run" "$more1" "$more2"; do wait_status "$r" "succeeded|failed" 90; done
[ "$(scalar "SELECT count(*) FROM ops.runs WHERE id IN ($run, $more1, $more2) AND status = 'succeeded'")" = 3 ] \
  || { scalar "SELECT id, status, error FROM ops.runs" >&2; fail "not every run succeeded"; }
[ "$(scalar "SELECT attempt FROM ops.runs WHERE id = $run")" = 2 ] || fail "run $run did not succeed on its second attempt"
say "OK: a full disk hands the run back and stops claims, the agent is unhealthy until space returns, then every run succeeds"

#!/usr/bin/env bash
# Bad inputs: an unreachable repository, a missing SHA, another project's
# mirror as a repository, executables named in
# settings or in a runtime profile the worker does not allow, a failing step,
# a step timeout, a cancel, a storage outage and a corrupted backup each fail
# (or cancel, or are refused) with a clear error naming the cause, and
# nothing half-restored is left serving. The Odoo is the stand-in, not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_worker bad --storage "file://$WORK/backups"
error_of() { scalar "SELECT error FROM ops.runs WHERE id = $1"; }
expect_error() {  # expect_error RUN PATTERN
  local err; err=$(error_of "$1")
  [[ $err == *$2* ]] || { show_events "$1" >&2; fail "run $1: error '$err' does not mention '$2'"; }
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $1 AND level = 'error' AND message LIKE '%$2%'")" -ge 1 ] \
    || fail "run $1: no error event mentioning '$2'"
  say "run $1 failed clearly: $err"
}

# An unreachable repository
cp_psql -c "INSERT INTO ops.projects (slug, name, repo_url) VALUES ('ghost', 'Ghost', '$WORK/no-such-repo.git');
            INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (2, 'dev', 'development', 'e2e_bad_inputs_ghost')" >/dev/null
run=$(scalar "SELECT id FROM ops.queue_run(2, 'dev', 'abcdef1', 'main', '{}', 'build')")
wait_status "$run" failed 30
expect_error "$run" "build/10-checkout"
expect_error "$run" "cannot clone the repository"

# A missing SHA
run=$(scalar "SELECT id FROM ops.queue_run(1, 'dev', 'deadbeefdeadbeef', 'main', '{}', 'build')")
wait_status "$run" failed 30
expect_error "$run" "revision deadbeefdeadbeef not found"

# A project fetches only its own repository: pointed at the mirror the
# worker keeps of project 1's repository (inside its state directory), the
# ghost project's build is refused and checks nothing out.
mirror=$(find "$STATE/git" -maxdepth 1 -name 'acme*.git' | head -n 1)
[ -n "$mirror" ] || fail "no mirror of project 1's repository in $STATE/git"
cp_psql -c "UPDATE ops.projects SET repo_url = 'file://$mirror' WHERE id = 2" >/dev/null
run=$(scalar "SELECT id FROM ops.queue_run(2, 'dev', NULL, 'main', '{}', 'build')")
wait_status "$run" failed 30
expect_error "$run" "lies inside the worker"

# Settings cannot choose what the worker executes: an odoo-bin or a runtime
# named in an environment's settings is refused by the control plane, and
# nothing runs.
cat >"$WORK/evil.sh" <<SH
#!/bin/sh
touch "$WORK/pwned"
SH
chmod +x "$WORK/evil.sh"
mkdir -p "$WORK/evil-steps"
cp "$WORK/evil.sh" "$WORK/evil-steps/10-evil"
rel=$(realpath -m --relative-to="$ROOT/worker/steps/lib/runtime" "$WORK/evil-steps")
for kv in "\"odoo_bin\": \"$WORK/evil.sh\"" "\"runtime\": \"docker/$rel\""; do
  if out=$(cp_psql -c "UPDATE ops.environments SET settings = settings || '{$kv}' WHERE project_id = 1 AND name = 'dev'" 2>&1); then
    say "settings {$kv} accepted"
  else
    [[ $out == *"cannot be set"* ]] || fail "settings {$kv}: unexpected error: $out"
  fi
done
run=$(queue dev deploy)
wait_status "$run" "succeeded|failed" 90
[ -e "$WORK/pwned" ] && fail "an environment setting made the worker execute $WORK/evil.sh"
say "odoo_bin and runtime in settings refused; the deploy ran the worker's own odoo-bin and steps"
# A runtime profile (the operator's) naming an executable this worker's
# configuration does not allow fails the run before any step.
cp_psql -c "INSERT INTO ops.runtime_profiles (name, odoo_bin) VALUES ('unlisted', '$WORK/evil.sh');
            UPDATE ops.environments SET runtime_profile = 'unlisted' WHERE project_id = 1 AND name = 'dev'" >/dev/null
run=$(queue dev deploy)
wait_status "$run" failed 30
expect_error "$run" "odoo_bin $WORK/evil.sh is not allowed by this worker"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $run AND message LIKE 'step % started'")" = 0 ] \
  || fail "steps ran under a runtime profile the worker does not allow"
[ -e "$WORK/pwned" ] && fail "a runtime profile made the worker execute $WORK/evil.sh"
cp_psql -c "UPDATE ops.environments SET runtime_profile = NULL WHERE project_id = 1 AND name = 'dev';
            DELETE FROM ops.runtime_profiles WHERE name = 'unlisted'" >/dev/null
# A runtime profile naming a runtime no worker implements fails the run
# before any step, naming it and the known runtimes: no fallback to the
# process runtime.
cp_psql -c "INSERT INTO ops.runtime_profiles (name, runtime) VALUES ('k8s', 'kubernetes');
            UPDATE ops.environments SET runtime_profile = 'k8s' WHERE project_id = 1 AND name = 'dev'" >/dev/null
run=$(queue dev deploy)
wait_status "$run" failed 30
expect_error "$run" 'runtime profile "k8s": unknown runtime "kubernetes"; known runtimes: process, docker'
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $run AND message LIKE 'step % started'")" = 0 ] \
  || fail "steps ran under a runtime profile naming an unknown runtime"
cp_psql -c "UPDATE ops.environments SET runtime_profile = NULL WHERE project_id = 1 AND name = 'dev';
            DELETE FROM ops.runtime_profiles WHERE name = 'k8s'" >/dev/null
say "a runtime profile naming an unknown runtime fails the run before any step"
# The steps refuse an unknown runtime as well (lib/runtime.sh), were one to
# reach them, and the command form of the interface says which it knows.
out=$(ODOOOPS_RUNTIME=kubernetes ODOOOPS_ENV_DIR="$WORK/none" ODOOOPS_STATE_DIR="$WORK/none" ODOOOPS_DB_NAME=none \
      "$ROOT/worker/steps/lib/runtime.sh" logs 2>&1) && fail "runtime.sh ran with an unknown runtime"
[[ $out == *'unknown runtime "kubernetes" (ODOOOPS_RUNTIME); known runtimes: docker, process'* ]] \
  || fail "runtime.sh with an unknown runtime: $out"

# A failing step: a commit with a broken manifest fails the addons step
mkdir -p "$REPO/addons/broken"
echo '{"name": "Broken", "version": ' >"$REPO/addons/broken/__manifest__.py"
git -C "$REPO" -c user.email=t@example.com -c user.name=test add -A
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qm broken
BROKEN=$(git -C "$REPO" rev-parse HEAD)
run=$(scalar "SELECT id FROM ops.queue_run(1, 'staging', '$BROKEN', 'main', '{}', 'deploy')")
wait_status "$run" failed 30
expect_error "$run" "step deploy/20-addons exited with code 1"
[ -e "$STATE/envs/acme/staging/current" ] && fail "a failed deploy switched the release"

# A step timeout and a cancel, with custom steps: the whole group is killed
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
mkdir -p "$WORK/steps/test" "$WORK/steps/build"
cat >"$WORK/steps/test/10-hang" <<'SH'
#!/usr/bin/env bash
# odooops-timeout: 2
echo "hanging (pid $$)"
sleep 300 &
echo $! >"$ODOOOPS_WORKSPACE/../hang-child.pid"
wait
SH
cat >"$WORK/steps/build/10-long" <<'SH'
#!/usr/bin/env bash
echo "long build"
sleep 300 &
echo $! >"$ODOOOPS_WORKSPACE/../long-child.pid"
wait
SH
chmod +x "$WORK/steps/test/10-hang" "$WORK/steps/build/10-long"
start_worker custom --steps-dir "$WORK/steps" --heartbeat-interval 1 --lease 10
run=$(queue dev test)
wait_status "$run" failed 30
expect_error "$run" "step test/10-hang timed out after 2 s"
for _ in $(seq 1 60); do alive "$(cat "$STATE/workspaces/hang-child.pid")" || break; sleep 0.1; done
alive "$(cat "$STATE/workspaces/hang-child.pid")" && fail "the timed-out step's child still runs"
run=$(queue dev build)
for _ in $(seq 1 100); do [ -f "$STATE/workspaces/long-child.pid" ] && break; sleep 0.1; done
scalar "SELECT status FROM ops.cancel_run($run, 'operator changed their mind')" >/dev/null
for _ in $(seq 1 60); do alive "$(cat "$STATE/workspaces/long-child.pid")" || break; sleep 0.1; done
alive "$(cat "$STATE/workspaces/long-child.pid")" && fail "the cancelled run's step still runs"
[ "$(scalar "SELECT status FROM ops.runs WHERE id = $run")" = cancelled ] || fail "run not cancelled"
say "timeout and cancel: runs ended and their process groups were killed"
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true

# A storage outage: S3 endpoint with nothing listening
start_worker outage --storage s3://odooops-backups/acme --s3-endpoint "http://127.0.0.1:$(free_port)" \
  --s3-access-key S3RVER --s3-secret-key S3RVER
d=$(queue staging deploy); wait_status "$d" succeeded 90
run=$(queue_backup staging)
wait_status "$run" failed 60
expect_error "$run" "unreachable"
[ "$(scalar "SELECT count(*) FROM ops.backups WHERE status = 'completed'")" = 0 ] || fail "an outage produced a completed backup"
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true

# A corrupted backup: the restore fails at the checksum, staging keeps serving its data
start_worker corrupt --storage "file://$WORK/backups"
rehost corrupt staging
psql -X -q -d e2e_bad_inputs_staging -c "UPDATE res_partner SET name = 'staging original' WHERE id = 1"
before=$(data_fingerprint e2e_bad_inputs_staging)
b=$(queue_backup staging); wait_status "$b" succeeded 60
bid=$(backup_of "$b")
file=$(scalar "SELECT location FROM ops.backups WHERE id = $bid"); file=${file#file://}
printf 'corruption' | dd of="$file" bs=1 seek=2000 conv=notrunc status=none
psql -X -q -d e2e_bad_inputs_staging -c "UPDATE res_partner SET name = 'changed after backup' WHERE id = 2"
after=$(data_fingerprint e2e_bad_inputs_staging)
run=$(queue_restore "$bid" staging)
wait_status "$run" failed 60
expect_error "$run" "checksum mismatch"
[ "$(data_fingerprint e2e_bad_inputs_staging)" = "$after" ] || fail "staging data changed by a failed restore"
[ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_restore\\_%'")" = 0 ] || fail "a half-restored database was left behind"
health "$PORT_STAGING" | has '"pass"' || fail "staging stopped serving after a failed restore"
[ "$before" != "$after" ] || fail "test precondition"
say "corrupted backup: restore refused at the checksum, staging untouched and serving"
say "PASS"

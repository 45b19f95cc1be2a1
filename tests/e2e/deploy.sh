#!/usr/bin/env bash
# queue -> build -> deploy -> healthy -> succeeded, with the real worker, a
# real git repository and the Odoo stand-in (not Odoo); events are ordered
# and carry step and stream; a second deploy replaces the first process.
# The worker serves its metrics (--metrics-listen) and reports the disk use
# of its state directory and of the environments' filestores.
source "$(dirname "$0")/lib.sh"
setup_control_plane
METRICS_PORT=$(free_port)
start_worker w1 --kinds build,deploy,test --label zone=test --metrics-listen "127.0.0.1:$METRICS_PORT"

# worker_metric SAMPLE: the value of one sample of the worker's /metrics.
worker_metric() {
  curl -fsS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v s="$1" '$1 == s { print $2 }'
}
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >/dev/null 2>&1 && break
  sleep 0.1
done
[ "$(worker_metric 'odooops_worker_up{worker_id="w1",version="'"$(scalar "SELECT extversion FROM pg_extension WHERE extname = 'odooops'")"'"}')" = 1 ] \
  || fail "worker /metrics: no up sample: $(curl -sS "http://127.0.0.1:$METRICS_PORT/metrics" | head -5)"
[ "$(worker_metric 'odooops_worker_runs_total{outcome="succeeded"}')" = 0 ] || fail "worker /metrics: succeeded runs before any run"

build=$(queue dev build)
wait_status "$build" succeeded 60
[ "$(scalar "SELECT result->'addons' @> '[{\"name\":\"acme_sale\"},{\"name\":\"acme_stock\"}]' FROM ops.runs WHERE id = $build")" = t ] \
  || fail "build did not record the addons: $(scalar "SELECT result FROM ops.runs WHERE id = $build")"
[ "$(scalar "SELECT result->'requirements'->0->>'path' FROM ops.runs WHERE id = $build")" = requirements.txt ] || fail "requirements not recorded"
[ "$(scalar "SELECT result->'git'->>'sha' FROM ops.runs WHERE id = $build")" = "$SHA" ] || fail "build did not check out $SHA"
say "build $build succeeded: addons and requirements recorded"
[ "$(worker_metric 'odooops_worker_runs_total{outcome="succeeded"}')" = 1 ] || fail "worker /metrics: the build is not counted"
[ "$(worker_metric 'odooops_worker_runs_total{outcome="failed"}')" = 0 ] || fail "worker /metrics: a failed run counted"
build_steps=$(worker_metric 'odooops_worker_step_duration_seconds_count{workflow="build"}')
[ "$build_steps" = "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $build AND message LIKE 'step % started'")" ] \
  || fail "worker /metrics: $build_steps build steps timed"
[ "$(worker_metric 'odooops_worker_spool_lines')" = 0 ] || fail "worker /metrics: spool lines left after the build"
say "worker /metrics: the build counted, its $build_steps steps timed"

deploy=$(queue staging deploy)
wait_status "$deploy" succeeded 90
url=$(scalar "SELECT result->>'url' FROM ops.runs WHERE id = $deploy")
[ "$url" = "http://127.0.0.1:$PORT_STAGING" ] || fail "deploy recorded url '$url'"
health "$PORT_STAGING" | has '"pass"' || fail "staging does not answer /web/health"
curl -fsS "http://127.0.0.1:$PORT_STAGING/standin/info" | has "e2e_deploy_staging" || fail "stand-in serves the wrong database"
say "deploy $deploy succeeded, $url healthy"

# The runtime interface as a command (worker/steps/lib/runtime.sh, what the
# worker's shell/psql/logs commands execute) with the variables a step of
# staging gets: psql connects as staging's own role, never a superuser; the
# log is staging's Odoo server log, filtered; the environment records the
# runtime its Odoo runs on.
senv=(ODOOOPS_RUNTIME=process ODOOOPS_STATE_DIR="$STATE" ODOOOPS_ENV_DIR="$STATE/envs/acme/staging"
      ODOOOPS_ENVIRONMENT=staging ODOOOPS_ENVIRONMENT_ID=2 ODOOOPS_DB_NAME=e2e_deploy_staging
      ODOOOPS_DB_HOST="${PGHOST:-}" ODOOOPS_DB_PORT="${PGPORT:-5432}")
rt="$ROOT/worker/steps/lib/runtime.sh"
[ "$(cat "$STATE/envs/acme/staging/runtime")" = process ] || fail "staging does not record its runtime"
who=$(env "${senv[@]}" "$rt" psql -XAtc "SELECT current_user || ' ' || current_database() || ' ' || (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)" 2>&1) || true
[ "$who" = "odoo_e2e_deploy_staging e2e_deploy_staging false" ] || fail "runtime.sh psql is not staging's own role on its database: $who"
env "${senv[@]}" "$rt" logs --grep 'HTTP service' | has 'HTTP service' || fail "runtime.sh logs --grep shows nothing of staging's log"
env "${senv[@]}" "$rt" logs --grep 'no-such-line-xyz' | has . && fail "runtime.sh logs --grep does not filter"
out=$(env "${senv[@]}" ODOOOPS_RUNTIME=docker "$rt" psql -c 'SELECT 1' 2>&1) && fail "a docker-runtime command ran on a process environment"
[[ $out == *"runs on the process runtime, and this command on the docker runtime"* ]] || fail "runtime mismatch not explained: $out"
say "runtime.sh psql (staging's role) and logs --grep on staging; another runtime's command refused"

# Events: transitions queued->claimed->running->succeeded in order, every
# step started and succeeded in directory order, output lines with stream.
order=$(scalar "SELECT string_agg(to_status, ',' ORDER BY id) FROM ops.run_events WHERE run_id = $deploy AND kind = 'transition'")
[ "$order" = "queued,claimed,running,succeeded" ] || fail "transitions out of order: $order"
steps=$(scalar "SELECT string_agg(step, ',' ORDER BY id) FROM ops.run_events WHERE run_id = $deploy AND message LIKE 'step % started'")
[ "$steps" = "deploy/10-checkout,deploy/20-addons,deploy/25-pre-deploy-backup,deploy/30-release,deploy/35-restore-backup,deploy/40-start,deploy/50-health" ] || fail "steps: $steps"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $deploy AND stream = 'stdout' AND step = 'deploy/50-health' AND message LIKE 'health check passed%'")" = 1 ] \
  || fail "health check output not streamed"
# ids grow with time inside the run: no event is out of order
[ "$(scalar "SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY id) AS back FROM ops.run_events WHERE run_id = $deploy) s WHERE back")" = 0 ] \
  || fail "events out of time order"
[ "$(scalar "SELECT count(*) FROM ops.agents WHERE worker_id = 'w1' AND kinds = '{build,deploy,test}' AND labels->>'zone' = 'test'")" = 1 ] \
  || fail "agent registration missing"
say "events ordered: $order"

# Disk use: the worker reported its state directory's disk after the deploy;
# the staging database is measured on this server.
[ "$(scalar "SELECT count(*) FROM ops.metrics_agent_disk WHERE worker_id = 'w1' AND path = '$STATE' AND total_bytes > 0 AND free_bytes <= total_bytes")" = 1 ] \
  || fail "no disk report of w1: $(scalar "SELECT row_to_json(d) FROM ops.agent_disk_usage d")"
[ "$(scalar "SELECT database_bytes = pg_database_size(e.db_name) FROM ops.metrics_environment_usage u JOIN ops.environments e ON e.name = u.environment WHERE u.environment = 'staging'")" = t ] \
  || fail "staging's database size not measured"
filestore=$(scalar "SELECT '$STATE/envs/acme/staging/data/filestore/' || db_name FROM ops.environments WHERE name = 'staging'")
mkdir -p "$filestore/ab"
head -c 70000 /dev/zero >"$filestore/ab/attachment"
pid1=$(cat "$STATE/envs/acme/staging/odoo.pid")
# A new commit that raises one manifest version: the redeploy updates only that module.
sed -i 's/17.0.1.0.0/17.0.1.1.0/' "$REPO/addons/acme_stock/__manifest__.py"
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qam "acme_stock 1.1"
SHA=$(git -C "$REPO" rev-parse HEAD)
deploy2=$(queue staging deploy)
# While a step runs, /metrics answers: the server does not wait for the run loop.
wait_status "$deploy2" running 60
[ -n "$(worker_metric 'odooops_worker_spool_lines')" ] || fail "worker /metrics did not answer during a run"
wait_status "$deploy2" succeeded 90
pid2=$(cat "$STATE/envs/acme/staging/odoo.pid")
[ "$pid1" != "$pid2" ] || fail "the previous process was not replaced"
kill -0 "$pid1" 2>/dev/null && fail "the previous Odoo process $pid1 still runs"
[ "$(scalar "SELECT result->'modules'->>'updated' FROM ops.runs WHERE id = $deploy2")" = '["acme_stock"]' ] \
  || fail "expected only acme_stock updated: $(scalar "SELECT result->'modules' FROM ops.runs WHERE id = $deploy2")"
health "$PORT_STAGING" | has '"pass"' || fail "staging unhealthy after redeploy"
say "redeploy $deploy2 replaced process $pid1 by $pid2 and updated only acme_stock"
fs_bytes=$(scalar "SELECT filestore_bytes FROM ops.metrics_environment_usage WHERE environment = 'staging' AND filestore_worker_id = 'w1'")
[ "${fs_bytes:-0}" -ge 70000 ] || fail "staging's filestore reported as '$fs_bytes' bytes, expected >= 70000"
say "disk use: w1's disk, staging's database and its filestore ($fs_bytes bytes) reported"

# The test workflow: modules installed with --test-enable on a throw-away
# database (the stand-in runs no real tests); a failure marker fails the step.
t=$(queue dev test)
wait_status "$t" succeeded 60
[ "$(scalar "SELECT result->'tests'->>'failed' FROM ops.runs WHERE id = $t")" = 0 ] || fail "test result not recorded"
[ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE '%\_test\_%'")" = 0 ] || fail "test database left behind"
touch "$REPO/addons/acme_sale/FAIL_STANDIN_TESTS"
git -C "$REPO" -c user.email=t@example.com -c user.name=test add -A
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qm "failing tests"
SHA=$(git -C "$REPO" rev-parse HEAD)
t2=$(queue dev test)
wait_status "$t2" failed 60
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $t2") == *"step test/30-odoo-tests exited with code 1: tests failed"* ]] \
  || fail "failing tests: $(scalar "SELECT error FROM ops.runs WHERE id = $t2")"
say "test run $t succeeded; test run $t2 failed on the failing module, naming the step"
[ "$(worker_metric 'odooops_worker_runs_total{outcome="succeeded"}')" = 4 ] || fail "worker /metrics: succeeded runs not 4"
[ "$(worker_metric 'odooops_worker_runs_total{outcome="failed"}')" = 1 ] || fail "worker /metrics: failed runs not 1"
[ -n "$(worker_metric 'odooops_worker_step_duration_seconds_bucket{workflow="deploy",le="+Inf"}')" ] || fail "worker /metrics: no deploy step durations"
say "worker /metrics: 4 runs succeeded and 1 failed"
say "PASS"

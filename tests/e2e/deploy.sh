#!/usr/bin/env bash
# queue -> build -> deploy -> healthy -> succeeded, with the real worker, a
# real git repository and the Odoo stand-in (not Odoo); events are ordered
# and carry step and stream; a second deploy replaces the first process.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_worker w1 --kinds build,deploy,test --label zone=test

build=$(queue dev build)
wait_status "$build" succeeded 60
[ "$(scalar "SELECT result->'addons' @> '[{\"name\":\"acme_sale\"},{\"name\":\"acme_stock\"}]' FROM ops.runs WHERE id = $build")" = t ] \
  || fail "build did not record the addons: $(scalar "SELECT result FROM ops.runs WHERE id = $build")"
[ "$(scalar "SELECT result->'requirements'->0->>'path' FROM ops.runs WHERE id = $build")" = requirements.txt ] || fail "requirements not recorded"
[ "$(scalar "SELECT result->'git'->>'sha' FROM ops.runs WHERE id = $build")" = "$SHA" ] || fail "build did not check out $SHA"
say "build $build succeeded: addons and requirements recorded"

deploy=$(queue staging deploy)
wait_status "$deploy" succeeded 90
url=$(scalar "SELECT result->>'url' FROM ops.runs WHERE id = $deploy")
[ "$url" = "http://127.0.0.1:$PORT_STAGING" ] || fail "deploy recorded url '$url'"
health "$PORT_STAGING" | grep -q '"pass"' || fail "staging does not answer /web/health"
curl -fsS "http://127.0.0.1:$PORT_STAGING/standin/info" | grep -q "e2e_deploy_staging" || fail "stand-in serves the wrong database"
say "deploy $deploy succeeded, $url healthy"

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

pid1=$(cat "$STATE/envs/acme/staging/odoo.pid")
# A new commit that raises one manifest version: the redeploy updates only that module.
sed -i 's/17.0.1.0.0/17.0.1.1.0/' "$REPO/addons/acme_stock/__manifest__.py"
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qam "acme_stock 1.1"
SHA=$(git -C "$REPO" rev-parse HEAD)
deploy2=$(queue staging deploy)
wait_status "$deploy2" succeeded 90
pid2=$(cat "$STATE/envs/acme/staging/odoo.pid")
[ "$pid1" != "$pid2" ] || fail "the previous process was not replaced"
kill -0 "$pid1" 2>/dev/null && fail "the previous Odoo process $pid1 still runs"
[ "$(scalar "SELECT result->'modules'->>'updated' FROM ops.runs WHERE id = $deploy2")" = '["acme_stock"]' ] \
  || fail "expected only acme_stock updated: $(scalar "SELECT result->'modules' FROM ops.runs WHERE id = $deploy2")"
health "$PORT_STAGING" | grep -q '"pass"' || fail "staging unhealthy after redeploy"
say "redeploy $deploy2 replaced process $pid1 by $pid2 and updated only acme_stock"

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
say "PASS"

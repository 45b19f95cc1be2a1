#!/usr/bin/env bash
# The development stage as on Odoo.sh: a GitHub push to a feature branch
# queues a test run (a fresh database from the template, the branch's
# modules installed with --test-enable, the log parsed into result.tests
# and kept as an artifact) before the deploy; each run reports a commit
# status to GitHub (pending when queued, success or failure when finished,
# recorded as deliveries of the GitHub subscription). A failing test turns
# the test run's status red and its event names the test. The Odoo is the
# stand-in (tests/harness/odoo_standin.py), which logs its test results as
# Odoo 17 does.
source "$(dirname "$0")/lib.sh"
setup_control_plane
enable_github
# Commit statuses to GitHub: the subscription's deliveries are the record.
scalar "INSERT INTO ops.webhook_subscriptions (name, url, format, project_id)
        VALUES ('github statuses', 'http://127.0.0.1:9', 'github', 1)" >/dev/null
start_worker w1 --kinds test,deploy --storage "file://$WORK/storage" --http-ports "${E2E_HTTP_PORTS:-29150-29199}"

# push BRANCH -> "TEST_RUN DEPLOY_RUN" queued by a GitHub push of SHA.
push() {
  git -C "$REPO" branch -f "$1" "$SHA"
  github push "$(push_event "$1" "$SHA")" | python3 -c '
import json, sys
q = json.load(sys.stdin)["queued"]
assert [x["workflow"] for x in q] == ["test", "deploy"], q
print(q[0]["run_id"], q[1]["run_id"])'
}
# delivery RUN EVENT -> the GitHub delivery payload's data of RUN's EVENT.
delivery() {
  scalar "SELECT d.payload -> 'data' FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id
           WHERE s.format = 'github' AND d.event_type = '$2' AND (d.payload -> 'data' ->> 'id')::bigint = $1"
}
field() { python3 -c 'import json, sys; v = json.loads(sys.argv[1]); [v := v[k] if not isinstance(v, list) else v[int(k)] for k in sys.argv[2].split(",")]; print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1" "$2"; }

read -r t1 d1 < <(push feature/green) || fail "the push did not queue test then deploy"
[ -n "$t1" ] && [ -n "$d1" ] || fail "the push queued no runs"
env=$(scalar "SELECT e.name FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id WHERE r.id = $t1")
[ "$env" = dev-feature-green ] || fail "test run $t1 is for $env"
[ "$(scalar "SELECT environment_id FROM ops.runs WHERE id = $t1") " = "$(scalar "SELECT environment_id FROM ops.runs WHERE id = $d1") " ] \
  || fail "test and deploy runs are for different environments"
[ "$(field "$(delivery "$t1" run.queued)" workflow)" = test ] || fail "no pending status for the queued test run $t1"
[ "$(field "$(delivery "$d1" run.queued)" workflow)" = deploy ] || fail "no pending status for the queued deploy run $d1"
wait_status "$t1" succeeded 120
wait_status "$d1" succeeded 120
# result.tests: what Odoo's log said, per module (the stand-in: one passing test each).
[ "$(result "$t1" tests,tests)" = 2 ] && [ "$(result "$t1" tests,passed)" = 2 ] && [ "$(result "$t1" tests,failed)" = 0 ] \
  || fail "test run $t1: $(result "$t1" tests)"
[ "$(result "$t1" tests,modules,acme_stock,passed)" = 1 ] || fail "test run $t1 modules: $(result "$t1" tests,modules)"
[ "$(result "$t1" tests,failing)" = "[]" ] || fail "test run $t1 failing: $(result "$t1" tests,failing)"
[ -n "$(scalar "SELECT location FROM ops.artifacts WHERE run_id = $t1 AND name = 'tests.log' AND kind = 'log'")" ] \
  || fail "test run $t1 kept no log"
fin=$(delivery "$t1" run.finished)
[ "$(field "$fin" status)" = succeeded ] && [ "$(field "$fin" tests,passed)" = 2 ] || fail "finished status of $t1: $fin"
# The fresh database was thrown away; the environment's own database serves.
[ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE '%\_test\_$t1'")" = 0 ] \
  || fail "test run $t1 left its database"
say "push to feature/green: test run $t1 (2 of 2 passed, pending then success) before deploy $d1"

# A failing test: the test run fails, its status and error name the test.
touch "$REPO/addons/acme_stock/FAIL_STANDIN_TESTS"
commit "acme_stock test fails"
read -r t2 d2 < <(push feature/red) || fail "the second push did not queue test then deploy"
wait_status "$t2" failed 120
[ "$(result "$t2" tests,failed)" = 1 ] && [ "$(result "$t2" tests,modules,acme_stock,failed)" = 1 ] \
  && [ "$(result "$t2" tests,modules,acme_sale,failed)" = 0 ] || fail "test run $t2: $(result "$t2" tests)"
[ "$(result "$t2" tests,failing,0)" = "acme_stock: TestStandin.test_standin_fails" ] \
  || fail "test run $t2 failing: $(result "$t2" tests,failing)"
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $t2") == *"tests failed: 1 failed, 0 error(s) of 3 tests: acme_stock: TestStandin.test_standin_fails"* ]] \
  || fail "test run $t2 error: $(scalar "SELECT error FROM ops.runs WHERE id = $t2")"
fin=$(delivery "$t2" run.finished)
[ "$(field "$fin" status)" = failed ] && [ "$(field "$fin" tests,failing,0)" = "acme_stock: TestStandin.test_standin_fails" ] \
  || fail "finished status of $t2: $fin"
wait_status "$d2" succeeded 120
say "push to feature/red: test run $t2 failed naming acme_stock: TestStandin.test_standin_fails; deploy $d2 still serves the branch"
# Submodules are fetched (the addons in them tested), through the
# transports the operator allows only.
SUB=$WORK/extra
mkdir -p "$SUB/acme_extra"
echo '{"name": "Acme Extra", "version": "17.0.1.0.0", "depends": ["base"]}' >"$SUB/acme_extra/__manifest__.py"
touch "$SUB/acme_extra/__init__.py"
git -C "$SUB" init -q -b main && git -C "$SUB" add -A && git -C "$SUB" -c user.email=t@example.com -c user.name=test commit -qm extra
rm "$REPO/addons/acme_stock/FAIL_STANDIN_TESTS"
git -C "$REPO" -c protocol.file.allow=always submodule --quiet add "$SUB" extra
commit "acme_extra as a submodule"
read -r t3 d3 < <(push feature/sub) || fail "the submodule push did not queue test then deploy"
wait_status "$t3" succeeded 120
[ "$(result "$t3" tests,modules,acme_extra,passed)" = 1 ] || fail "test run $t3 did not test the submodule's addon: $(result "$t3" tests)"
wait_status "$d3" succeeded 120
git -C "$REPO" config --file "$REPO/.gitmodules" submodule.extra.url "git://127.0.0.1:9/extra"
commit "the submodule over a transport the operator does not allow"
read -r t4 d4 < <(push feature/sub) || fail "the git:// push did not queue test then deploy"
wait_status "$t4" failed 120
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $t4") == *"cannot fetch the submodules"* ]] \
  || fail "submodule over git://: $(scalar "SELECT error FROM ops.runs WHERE id = $t4")"
wait_status "$d4" failed 120
say "submodules: test run $t3 tested the submodule's acme_extra; a git:// submodule refused (run $t4)"

# A rebuild: the same commit from scratch, one command. Data written since
# the deploy is gone, the database is new and no kept-aside copy is left.
db=$(scalar "SELECT db_name FROM ops.environments WHERE name = 'dev-feature-green'")
on "$db" "CREATE TABLE written_since_deploy (x int)"
oid_before=$(on postgres "SELECT oid FROM pg_database WHERE datname = '$db'")
out=$(PGDATABASE=$CP_DB "$ROOT/scripts/odooops/rebuild.sh" --project acme --env dev-feature-green) || fail "rebuild.sh: $out"
r=${out#run }
[ "$(scalar "SELECT git_sha = (SELECT git_sha FROM ops.runs WHERE id = $d1) AND workflow = 'deploy' AND (metadata->>'rebuild')::boolean
              FROM ops.runs WHERE id = $r")" = t ] || fail "rebuild run $r: $(scalar "SELECT row_to_json(r) FROM ops.runs r WHERE id = $r")"
wait_status "$r" succeeded 120
[ "$(on "$db" "SELECT to_regclass('written_since_deploy') IS NULL")" = t ] || fail "the rebuilt database still has the data written since the deploy"
[ "$(on postgres "SELECT oid FROM pg_database WHERE datname = '$db'")" != "$oid_before" ] || fail "the database was not replaced"
[ "$(on "$db" "SELECT count(*) FROM ir_module_module WHERE name IN ('acme_sale', 'acme_stock') AND state = 'installed'")" = 2 ] \
  || fail "the rebuilt database lacks the branch's modules"
[ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname LIKE '${db:0:40}\_pre\_%'")" = 0 ] || fail "the replaced database was left behind"
# Production is never rebuilt (nor tested on its data).
err=$(scalar "SELECT ops.rebuild_environment(1, 'production')" 2>&1) && fail "production was rebuilt"
[[ $err == *"production is never rebuilt"* ]] || fail "rebuild of production: $err"
# Every odoo-bin run of a step goes through odoo_run, which refuses
# --test-enable on production's own database (a throw-away one is allowed).
never_tested() {
  ODOOOPS_ENV_DIR=$WORK/prod-check ODOOOPS_STAGE=production ODOOOPS_DB_NAME=live ODOOOPS_STATE_DIR=$STATE \
    bash -c 'source "$1/worker/steps/lib/common.sh"; shift; production_never_tested "$@"' check "$ROOT" "$@" 3>/dev/null
}
never_tested --database live -i m --test-enable 2>/dev/null && fail "tests were allowed on production's database"
[[ $(never_tested -d live --test-enable 2>&1) == *"tests never run on production's database live"* ]] || fail "no refusal message"
never_tested --database live_test_7 --test-enable || fail "a throw-away database of production was refused"
never_tested --database live -u m || fail "an update of production was refused"
say "rebuild $r: the same commit on a new database, data since the deploy gone; production refused"
say "PASS"

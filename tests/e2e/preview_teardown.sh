#!/usr/bin/env bash
# The life of a preview environment to its end: a pull request opened
# through GitHub ingest creates pr-<number> and deploys it; once its TTL has
# passed, the expiry the scheduler runs (ops.expire_environments) queues its
# destroy, and the worker's destroy run stops its Odoo, drops its database
# and role, removes its directory (filestore included) and gives its HTTP
# port back; the row ends destroyed. A development environment of a pushed
# branch expires the same way.
source "$(dirname "$0")/lib.sh"
setup_control_plane
enable_github
start_worker w1 --kinds test,deploy,destroy --http-ports "${E2E_HTTP_PORTS:-29100-29149}"

# deploy_via EVENT BODY ENV -> the environment's deploy run, once it succeeded.
deploy_via() {
  local answer run
  answer=$(github "$1" "$2")
  run=$(python3 -c 'import json, sys; print([q for q in json.loads(sys.argv[1])["queued"] if q["workflow"] == "deploy"][0]["run_id"])' "$answer")
  [ "$(scalar "SELECT e.name FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id WHERE r.id = $run")" = "$3" ] \
    || fail "$1 did not queue a deploy of $3: $answer"
  wait_status "$run" succeeded 120
  echo "$run"
}

# expire_and_destroy ENV: its TTL runs out; the scheduler's expiry queues
# the destroy; waits for the run. Prints the destroy run's id.
expire_and_destroy() {
  local id run
  id=$(scalar "SELECT id FROM ops.environments WHERE name = '$1'")
  scalar "UPDATE ops.environments SET expires_at = now() - interval '1 second' WHERE id = $id" >/dev/null
  [ "$(scalar "SELECT ops.expire_environments()")" = 1 ] || fail "$1 was not expired"
  [ "$(scalar "SELECT status FROM ops.environments WHERE id = $id")" = destroying ] || fail "$1 is not destroying"
  run=$(scalar "SELECT id FROM ops.runs WHERE environment_id = $id AND workflow = 'destroy'")
  [ -n "$run" ] || fail "no destroy run for $1"
  [ "$(scalar "SELECT metadata->>'reason' FROM ops.runs WHERE id = $run")" = expired ] || fail "destroy run $run is not for the expiry"
  wait_status "$run" succeeded 120
  echo "$run"
}

# assert_gone ENV DB DEPLOY_RUN DESTROY_RUN: everything of the environment is gone.
assert_gone() {
  local env=$1 db=$2 deploy=$3 destroy=$4 pid=$5 port=$6 dir=$STATE/envs/acme/$1
  alive "$pid" && fail "the Odoo process $pid of $env still runs after destroy $destroy"
  curl -fsS --max-time 2 "http://127.0.0.1:$port/web/health" >/dev/null 2>&1 && fail "port $port of $env still answers"
  [ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ] || fail "database $db of $env still exists"
  [ "$(on postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'odoo_$db'")" = 0 ] || fail "role odoo_$db of $env still exists"
  [ ! -e "$dir" ] || fail "$dir (filestore $dir/data/filestore/$db) still exists: $(find "$dir" | head -5)"
  if grep -rqx "$dir" "$STATE/ports" 2>/dev/null; then fail "port $port of $env is still reserved"; fi
  [ "$(scalar "SELECT status || ',' || (destroyed_at IS NOT NULL) FROM ops.environments WHERE name = '$env'")" = destroyed,true ] \
    || fail "$env is $(scalar "SELECT status FROM ops.environments WHERE name = '$env'") after destroy $destroy"
  [ "$(scalar "SELECT count(*) FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
                WHERE e.name = '$env' AND r.status NOT IN ('succeeded', 'failed', 'cancelled')")" = 0 ] \
    || fail "$env has runs left that are not finished"
}

# A pull request opened: pr-7 is created and deployed.
deploy=$(deploy_via pull_request "$(pull_request_event opened 7 feature/loyalty "$SHA")" pr-7)
db=$(scalar "SELECT db_name FROM ops.environments WHERE name = 'pr-7'")
[ "$(scalar "SELECT stage || ',' || (expires_at > now()) FROM ops.environments WHERE name = 'pr-7'")" = preview,true ] \
  || fail "pr-7 is not a preview environment with a TTL"
url=$(result "$deploy" url); port=${url##*:}
health "$port" | has '"pass"' || fail "pr-7 does not answer on $url"
curl -fsS "$url/standin/info" | has "\"database\": \"$db\"" || fail "pr-7 does not serve $db"
pid=$(cat "$STATE/envs/acme/pr-7/odoo.pid")
[ -d "$STATE/envs/acme/pr-7/data/filestore/$db" ] || fail "pr-7 has no filestore"
say "pull request 7: preview pr-7 deployed by $deploy on $url (database $db, process $pid)"

destroy=$(expire_and_destroy pr-7)
assert_gone pr-7 "$db" "$deploy" "$destroy" "$pid" "$port"
[ "$(scalar "SELECT string_agg(step, ',' ORDER BY id) FROM ops.run_events WHERE run_id = $destroy AND message LIKE 'step % started'")" \
  = destroy/10-final-backup,destroy/20-remove ] || fail "destroy $destroy did not run its steps"
say "pr-7 expired: destroy $destroy stopped process $pid, dropped $db and its role, removed its directory and port; the row is destroyed"

# A pushed feature branch: its development environment expires alike.
deploy=$(deploy_via push "$(push_event feature/points "$SHA")" dev-feature-points)
db=$(scalar "SELECT db_name FROM ops.environments WHERE name = 'dev-feature-points'")
url=$(result "$deploy" url); port=${url##*:}
health "$port" | has '"pass"' || fail "dev-feature-points does not answer on $url"
pid=$(cat "$STATE/envs/acme/dev-feature-points/odoo.pid")
destroy=$(expire_and_destroy dev-feature-points)
assert_gone dev-feature-points "$db" "$deploy" "$destroy" "$pid" "$port"
[ "$(scalar "SELECT ops.expire_environments()")" = 0 ] || fail "a destroyed environment expired again"
say "dev-feature-points expired: destroy $destroy removed its process, database, directory and port"
say "PASS"

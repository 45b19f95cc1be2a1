#!/usr/bin/env bash
# Every environment gets an HTTP port of its own from its worker's range
# (--http-ports), kept across redeploys: two branches of one development
# template (whose settings name an http_port) deploy side by side, each
# healthy on its own port and answering for its own database. The health
# check tells another environment's Odoo apart, and an explicit
# settings.http_port that another environment holds is refused.
source "$(dirname "$0")/lib.sh"
setup_control_plane
enable_github
RANGE=${E2E_HTTP_PORTS:-29150-29199}
start_worker w1 --kinds test,deploy,destroy --http-ports "$RANGE"

# push_branch BRANCH ENV -> the deploy run of ENV, once it succeeded.
push_branch() {
  local answer run
  answer=$(github push "$(push_event "$1" "$SHA")")
  run=$(python3 -c 'import json, sys; print([q for q in json.loads(sys.argv[1])["queued"] if q["workflow"] == "deploy"][0]["run_id"])' "$answer")
  [ "$(scalar "SELECT e.name FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id WHERE r.id = $run")" = "$2" ] \
    || fail "the push of $1 did not deploy $2: $answer"
  wait_status "$run" succeeded 120
  echo "$run"
}
db_of() { scalar "SELECT db_name FROM ops.environments WHERE name = '$1'"; }
serves() { curl -fsS --max-time 3 "http://127.0.0.1:$1/standin/info" | python3 -c 'import json, sys; print(json.load(sys.stdin)["database"])'; }
# health_as ENV PORT: the worker's health check (lib/common.sh), as a step
# of ENV runs it, against the Odoo on PORT.
health_as() {
  ODOOOPS_ENV_DIR=$STATE/envs/acme/$1 ODOOOPS_DB_NAME=$(db_of "$1") ODOOOPS_STATE_DIR=$STATE ODOOOPS_ENVIRONMENT=$1 \
    bash -c 'source "$1/worker/steps/lib/common.sh"; health_check "http://127.0.0.1:$2" 4' health "$ROOT" "$2" 3>/dev/null
}

[ "$(scalar "SELECT settings->>'http_port' FROM ops.environments WHERE name = 'dev'")" = "$PORT_DEV" ] || fail "the template has no http_port"
a=$(push_branch feature/a dev-feature-a)
b=$(push_branch feature/b dev-feature-b)
port_a=$(result "$a" http_port); port_b=$(result "$b" http_port)
[ -n "$port_a" ] || fail "deploy $a reported no http_port: $(result "$a" '')"
[ -n "$port_b" ] || fail "deploy $b reported no http_port: $(result "$b" '')"
[ "$port_a" != "$port_b" ] || fail "dev-feature-a and dev-feature-b share port $port_a"
for p in "$port_a" "$port_b"; do
  if [ "$p" = "$PORT_DEV" ] || [ "$p" -lt "${RANGE%-*}" ] || [ "$p" -gt "${RANGE#*-}" ]; then fail "port $p is not one of $RANGE"; fi
done
[ "$(result "$a" url)" = "http://127.0.0.1:$port_a" ] || fail "deploy $a recorded the URL $(result "$a" url)"
[ "$(result "$b" url)" = "http://127.0.0.1:$port_b" ] || fail "deploy $b recorded the URL $(result "$b" url)"
[ "$(serves "$port_a")" = "$(db_of dev-feature-a)" ] || fail "port $port_a serves $(serves "$port_a"), not dev-feature-a's database"
[ "$(serves "$port_b")" = "$(db_of dev-feature-b)" ] || fail "port $port_b serves $(serves "$port_b"), not dev-feature-b's database"
health "$port_a" | has '"pass"' || fail "dev-feature-a is not healthy"
health "$port_b" | has '"pass"' || fail "dev-feature-b is not healthy"
[ "$(scalar "SELECT count(*) FROM ops.environments WHERE branch IS NOT NULL AND settings ? 'http_port'")" = 0 ] \
  || fail "a branch environment copied the template's http_port"
say "dev-feature-a on $port_a ($(db_of dev-feature-a)), dev-feature-b on $port_b ($(db_of dev-feature-b)), both healthy"

# The health check proves whose Odoo answers: dev-feature-a's check passes on
# its own port and fails on dev-feature-b's.
out=$(health_as dev-feature-a "$port_a" 2>&1) || fail "dev-feature-a's health check fails on its own Odoo: $out"
if out=$(health_as dev-feature-a "$port_b" 2>&1); then fail "dev-feature-a's health check passed on dev-feature-b's Odoo: $out"; fi
[[ $out == *"cannot open $(db_of dev-feature-a)"*"another environment's Odoo holds this port"* ]] || fail "the failed health check does not say why: $out"
say "a health check of dev-feature-a against dev-feature-b's Odoo fails: ${out%%$'\n'*}"

# A redeploy keeps the port.
echo "# more" >>"$REPO/addons/acme_sale/__init__.py"; commit "acme_sale touched"
a2=$(push_branch feature/a dev-feature-a)
[ "$(result "$a2" http_port)" = "$port_a" ] || fail "redeploy $a2 moved dev-feature-a from $port_a to $(result "$a2" http_port)"
[ "$(serves "$port_a")" = "$(db_of dev-feature-a)" ] || fail "dev-feature-a does not serve on $port_a after redeploy $a2"

# An explicit http_port is honoured; one another environment holds is refused.
s1=$(queue staging deploy); wait_status "$s1" succeeded 120
[ "$(result "$s1" http_port)" = "$PORT_STAGING" ] || fail "staging's settings.http_port $PORT_STAGING was not honoured: $(result "$s1" http_port)"
scalar "UPDATE ops.environments SET settings = settings || '{\"http_port\": $port_a}' WHERE name = 'staging'" >/dev/null
s2=$(queue staging deploy); wait_status "$s2" failed 60
err=$(scalar "SELECT error FROM ops.runs WHERE id = $s2")
[[ $err == *"port $port_a (settings.http_port) is already the port of the environment in $STATE/envs/acme/dev-feature-a"* ]] \
  || fail "staging on dev-feature-a's port: $err"
[ "$(serves "$port_a")" = "$(db_of dev-feature-a)" ] || fail "the refused staging deploy $s2 disturbed dev-feature-a"
[ "$(serves "$PORT_STAGING")" = "$(db_of staging)" ] || fail "staging stopped serving after the refused deploy $s2"
say "staging honours its http_port $PORT_STAGING; asking for $port_a is refused: $err"

# A destroy gives the port back.
d=$(scalar "SELECT id FROM ops.destroy_environment(1, 'dev-feature-b', 'end-to-end test')"); wait_status "$d" succeeded 60
[ ! -e "$STATE/ports/$port_b" ] || fail "destroy $d did not give port $port_b back"
[ -e "$STATE/ports/$port_a" ] || fail "destroy $d released dev-feature-a's port"
say "destroy $d gave port $port_b back"
say "PASS"
